"""Every tunable of the detector, in one frozen dataclass with documented defaults."""

from __future__ import annotations

import math
from dataclasses import dataclass

MINUTES_PER_YEAR = 525_600
"""Minutes in a (non-leap) year: the ARL0 unit of the false-alarm target."""

SLOT_MINUTES = 15
"""Width of one rollup slot of the long history, minutes."""

SLOTS_PER_DAY = 24 * 60 // SLOT_MINUTES
SLOTS_PER_WEEK = 7 * SLOTS_PER_DAY


@dataclass(frozen=True)
class Params:
    """Tunables of baselines, tests, gates and the incident lifecycle."""

    # --- false-alarm target -------------------------------------------------------------
    false_alarms_per_series_year: float = 1.0
    """Target false alarms per series and year; thresholds are derived from it (ARL0)."""
    child_alarm_budget: float = 4.0
    """Series-equivalents of that budget shared by all non-global series of a service."""
    windows: tuple[int, ...] = (1, 5, 15)
    """Window lengths of the negative-binomial tail tests, minutes (max <= recent_minutes)."""
    cusum_ratios: tuple[float, ...] = (1.5, 2.0, 5.0)
    """Rate ratios rho that the CUSUMs are tuned to detect (one CUSUM per ratio); 1.5 is the
    smallest outage the product is designed for (DESIGN 6), 2 and 5 cover the rest."""
    level_noise_horizon: int = 15
    """Minutes over which level noise is treated as common when scaling CUSUM increments."""

    # --- effect-size and diversity gates ---------------------------------------------------
    min_reporters: int = 5
    """Minimum counted reporters in the alarming window (or CUSUM run)."""
    min_excess: float = 3.0
    """Minimum counted reporters above expectation in the alarming window."""
    min_ratio: float = 2.0
    """Minimum observed / expected ratio in the alarming window."""
    sustained_ratio: float = 1.5
    """Minimum ratio of a CUSUM run that has lasted sustained_minutes (instead of min_ratio):
    a sustained moderate rise is real evidence, a one-minute 1.5x blip is not."""
    sustained_minutes: int = 15
    """CUSUM run length (minutes) from which sustained_ratio replaces min_ratio."""
    broad_ratio: float = 2.5
    """Window (or CUSUM run) ratio below which an alarm needs a shift of the problem mix."""
    mix_shift: float = 1.3
    """How much more a problem must rise than the rest of its region's problems."""
    mix_z: float = 3.0
    """Standard deviations by which a problem's count must exceed its normal share of its
    region's count (binomial given the region, times the dispersion) to count as a shift."""
    min_reporter_diversity: float = 0.2
    """Minimum reporters / reports in the alarming window when reporters are known."""
    min_prefix_diversity: float = 0.2
    """Minimum network prefixes / reporters (5-minute service window) when prefixes are known."""

    # --- baseline ------------------------------------------------------------------------
    history_weeks: int = 4
    """Weeks of 15-minute rollups kept for the baseline."""
    min_history_hours: int = 6
    """Hours of service history before any test runs (before: status INSUFFICIENT_HISTORY)."""
    min_series_reports: int = 10
    """Counted reporters a series needs in its history before it is tested on its own."""
    daily_after_hours: int = 24
    """Hours of history after which a daily profile replaces the flat cold-start rate."""
    weekly_after_days: int = 7
    """Days of history after which the weekly (minute-of-week) profile is used."""
    smoothing_kernel: tuple[float, ...] = (1.0, 2.0, 3.0, 2.0, 1.0)
    """Weights over neighbouring 15-minute slots used to smooth each profile (centred)."""
    borrow_prior_counts: float = 20.0
    """Counts behind one smoothed profile point at which a series' own profile gets half
    weight against its donor's shape (sparse series borrow the donor's shape)."""
    week_scale_prior: float = 10.0
    """Pseudo-counts shrinking the level ratio between past weeks (slow-growth adjustment)."""
    min_rate_per_min: float = 1e-3
    """Floor of the expected rate, reports per minute."""
    level_noise_floor: float = 0.1
    """Floor of the level coefficient of variation c (variance = phi*m + c^2*m^2)."""
    daily_level_cv: float = 0.3
    """Floor of c while only a daily profile is available (weekday effects unknown)."""
    cold_start_level_cv: float = 1.0
    """Floor of c while only a flat cold-start rate is available."""
    max_overdispersion: float = 20.0
    """Cap of the Poisson overdispersion phi (variance / mean at small means)."""
    minute_noise_days: float = 7.0
    """Time constant (days) of the decayed moments of one-minute residuals that measure how
    much of the level noise is minute-to-minute rather than common to a 15-minute slot."""

    robust_z: float = 3.5
    """Counts above expected + robust_z standard deviations of the current fit are clipped
    there when the noise is estimated (two passes), so rare bursts that were never outages
    do not inflate the quiet state's dispersion (their tail is calibrated separately)."""

    # --- tail calibration against each series' own evidence, see detector/tails.py --------
    tail_threshold: float = 0.4
    """Evidence (1 = model threshold) above which a minute starts or extends an episode."""
    tail_run_minutes: int = 15
    """Minutes below tail_threshold that end an episode (runs declustering)."""
    tail_burst_minutes: int = 60
    """Episodes above tail_threshold for longer than this are sustained rises (outages,
    news), not bursts of the quiet state, and are not learned."""
    tail_alarmed: str = "censor"
    """Short episodes during an open incident: "censor" their peak at the series' threshold
    (each counts as one exceedance, not as a scale: measured best on the full benchmark),
    "learn" them like any burst, or "drop" them (SPOT's rule)."""
    tail_days: float = 28.0
    """Time constant (days) of the decayed episode statistics."""
    tail_min_episodes: float = 5.0
    """Episodes (decayed count) a series needs before its own tail can raise its threshold."""
    tail_max_factor: float = 10.0
    """Largest threshold in evidence units (a multiple of the model's log-threshold)."""

    # --- clock changes (DST), see detector/phase.py ---------------------------------------
    phase_lookback_hours: int = 48
    """Hours of recent 15-minute history compared with the profile at +-1 hour at each refit."""
    phase_min_daily_reports: float = 500.0
    """Counted reporters per day a country needs before its clock is checked."""
    phase_threshold: float = math.log(2 * 365 * 96 / 0.01)
    """CUSUM threshold of the (Huber) log-likelihood ratio of a one-hour shift against none:
    log(2 shifts * slots per year / 0.01), i.e. under 0.01 spurious shifts per country-year if
    the terms were independent (they are not quite, so it is a floor of the real rate)."""
    phase_huber: float = 1.5
    """Huber cut-off (robust standard deviations) of one term's residual."""
    phase_side_share: float = 0.25
    """Share of phase_threshold that both rising and falling parts of the day must give."""

    # --- ingestion gap and backlog flush ----------------------------------------------------
    gap_fraction: float = 0.2
    """A service minute is 'missing' when its global count is below this share of expected."""
    gap_min_expected: float = 20.0
    """A run of missing minutes is an ingestion gap once it misses this many expected reports."""
    backlog_credit_factor: float = 2.0
    """Missing mass a backlog may repay, as a multiple of the estimated deficit (the
    deficit is measured against a baseline that can be off by tens of percent)."""
    backlog_ttl_minutes: int = 30
    """Minutes after a gap during which a burst first repays the missing mass."""

    # --- incidents -----------------------------------------------------------------------
    close_quiet_minutes: int = 10
    """Consecutive minutes the incident's scope must have settled before it closes: its
    count over the last close_window minutes inside the normal band and no window alarm on
    the scope or on a child listed as affected (alarms elsewhere in the service and what a
    CUSUM still remembers from the peak are ignored); its 15-minute count (the longest
    window) must then be inside the band too."""
    close_window: int = 5
    """Minutes of the count that must stay in the normal band for close_quiet_minutes (at
    most the longest window): short enough that an outage's last minutes leave it soon
    after the end, long enough that one quiet minute inside a flapping episode is not."""
    close_quantile: float = 0.999
    """Upper edge of the normal band: this quantile of the negative binomial of the scope's
    window count, at its expected mean with the baseline's variance."""
    close_ratio: float = 1.5
    """Floor of that edge as a multiple of the expected count. Dense series have a narrow
    band (about 1.3x at 5,000 per 15 minutes); a rise under sustained_ratio never raises an
    incident, so it does not hold one open either."""
    close_quiet_max_minutes: int = 40
    """Cap of the quiet time of a flapping incident: each reopen within close_quiet_minutes
    of its close doubles close_quiet_minutes (10, 20, 40), so a series flapping faster than
    that keeps one incident open instead of closing and reopening it every few minutes."""
    reopen_gap_minutes: int = 60
    """An alarm on a closed incident's scope, on a child it listed as affected or on a series
    containing its scope this soon after its end reopens it (an alarm elsewhere opens a new
    incident)."""
    split_after_minutes: int = 15
    """Minutes a 'possible' incident must have lasted before the window of a much stronger
    alarm (split_factor) for that alarm to split it into a new incident."""
    split_min_window: int = 5
    """Shortest window whose alarm may split a 'possible' incident: a one-minute spike of a
    series flapping at twice its normal level is a flare-up, not a new event."""
    split_factor: float = 3.0
    """A 'possible' incident is closed and a new one opened (or a closed 'possible' one is not
    reopened) when a window alarm's ratio exceeds this multiple of the incident's own ratio
    on that series: a much stronger onset is a new event, not the weak episode going on."""
    problems_ratio: float = 3.0
    """15-minute ratio of the scope series for severity 'problems'."""
    problems_minutes: int = 5
    """Minutes since onset before 'problems' can be declared."""
    problems_min_reporters: int = 20
    """Counted reporters in 15 minutes needed for 'problems'."""
    outage_ratio: float = 10.0
    """15-minute ratio of the scope series for severity 'outage'."""
    outage_minutes: int = 10
    """Minutes since onset before 'outage' can be declared."""
    outage_min_reporters: int = 50
    """Counted reporters in 15 minutes needed for 'outage'."""
    attribution_alpha: float = 1e-3
    """Tail probability of a child's excess since onset for it to be listed as affected."""
    attribution_min_ratio: float = 1.5
    """Observed / expected since onset for a child to be listed as affected."""
    attribution_min_share: float = 0.02
    """Share of the scope's excess a child needs to be listed as affected."""
    scope_share: float = 0.8
    """Share of the excess one country (or problem) needs to become the incident's scope."""
    max_listed: int = 20
    """Most regions (and problems) listed on an incident."""

    # --- buffers -------------------------------------------------------------------------
    recent_minutes: int = 120
    """Per-minute ring buffer length, minutes (onset back-search horizon)."""
    status_minutes: int = 60
    """Minutes of observed / expected returned by status()."""

    def __post_init__(self) -> None:
        if self.child_alarm_budget <= 0:
            raise ValueError("child_alarm_budget must be positive")
        if self.false_alarms_per_series_year <= 0:
            raise ValueError("false_alarms_per_series_year must be positive")
        if not self.windows or min(self.windows) < 1:
            raise ValueError("windows must be positive minute counts")
        if max(self.windows) >= self.recent_minutes:
            raise ValueError("recent_minutes must exceed the longest window")
        if any(r <= 1.0 for r in self.cusum_ratios):
            raise ValueError("cusum_ratios must be > 1")
        if self.history_weeks < 1:
            raise ValueError("history_weeks must be >= 1")
        if len(self.smoothing_kernel) % 2 != 1:
            raise ValueError("smoothing_kernel must have odd length")
        if self.min_ratio < 1.0 or self.sustained_ratio < 1.0:
            raise ValueError("min_ratio and sustained_ratio must be >= 1")
        if self.split_factor <= 1.0:
            raise ValueError("split_factor must be > 1")
        if (
            not 0.5 <= self.close_quantile < 1.0
            or min(self.close_quiet_minutes, self.close_window) < 1
        ):
            raise ValueError("close_quantile must be in [0.5, 1), close_* minutes >= 1")
        if self.phase_lookback_hours < 24 or self.phase_threshold <= 0:
            raise ValueError("phase_lookback_hours must be >= 24 and phase_threshold positive")
        if not 0.0 < self.tail_threshold < 1.0 or self.tail_max_factor < 1.0:
            raise ValueError("tail_threshold must be in (0, 1) and tail_max_factor >= 1")
        if (
            min(self.tail_run_minutes, self.tail_burst_minutes) < 1
            or self.tail_days <= 0
            or self.robust_z <= 0
        ):
            raise ValueError("tail_run_minutes, tail_days and robust_z must be positive")
        if self.status_minutes > self.recent_minutes:
            raise ValueError("status_minutes must not exceed recent_minutes")

    @property
    def n_tests(self) -> int:
        """Number of simultaneous tests per series and minute (windows + CUSUMs)."""
        return len(self.windows) + len(self.cusum_ratios)

    @property
    def alpha(self) -> float:
        """Per-test, per-minute tail probability threshold of the global series."""
        return self.false_alarms_per_series_year / (MINUTES_PER_YEAR * self.n_tests)

    @property
    def cusum_threshold(self) -> float:
        """CUSUM decision threshold h of the global series, from ARL0 >= exp(h)."""
        return math.log(MINUTES_PER_YEAR * self.n_tests / self.false_alarms_per_series_year)

    @property
    def history_slots(self) -> int:
        """Length of the 15-minute rollup ring."""
        return self.history_weeks * SLOTS_PER_WEEK
