#!/bin/sh
# Rebuild web/static/vendor/plotly.min.js: plotly.js (the version package.json pins) with only
# the trace types the pages draw (entry.js). Needs node and npm; run from anywhere.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../static/vendor"
cd "$here"
npm ci --no-audit --no-fund --ignore-scripts=false
version=$(node -p 'require("plotly.js/package.json").version')
mkdir -p "$out"
# maplibre's CSS is only for the map (tile) traces, which this bundle leaves out.
node_modules/.bin/esbuild entry.js --bundle --minify --format=iife --global-name=Plotly \
  --define:global=window --define:define.amd=false --target=es2016 --loader:.css=empty \
  --legal-comments=external --log-level=warning \
  --banner:js="/*! plotly.js v$version partial bundle (scatter, bar, choropleth, scattergeo) | MIT, see plotly.LICENSE.txt */" \
  --outfile="$out/plotly.min.js"
mv "$out/plotly.min.js.LEGAL.txt" "$out/plotly.THIRD-PARTY.txt"
cp node_modules/plotly.js/LICENSE "$out/plotly.LICENSE.txt"
echo "built $out/plotly.min.js (plotly.js $version, $(wc -c < "$out/plotly.min.js") bytes)"
