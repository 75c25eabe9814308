"""Peer outage detectors re-implemented from their published descriptions (docs/peers.md)."""

from peers.common import Decision, Peer, episodes
from peers.downdetector import DowndetectorStyle
from peers.ears import EarsC2, EarsC3
from peers.ewma import Ewma3Sigma
from peers.oracle import OracleCusum
from peers.shesd import Shesd

__all__ = [
    "Decision",
    "DowndetectorStyle",
    "EarsC2",
    "EarsC3",
    "Ewma3Sigma",
    "OracleCusum",
    "Peer",
    "Shesd",
    "episodes",
]
