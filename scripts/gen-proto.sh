#!/usr/bin/env bash
# Regenerates proto/gen/ from proto/*.proto (static protobufjs code + its types).
# CI checks that the committed output matches (test/proto/generated.test.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-proto/gen}
mkdir -p "$out"
for f in proto/*.proto; do
  name=$(basename "$f" .proto)
  npx --no-install pbjs -t static-module -w es6 --no-create --no-verify --no-convert --no-delimited -o "$out/$name.js" "$f"
  # protobufjs is CommonJS: Node's ESM loader needs the default import and the file extension.
  sed -i 's#^import \* as \$protobuf from "protobufjs/minimal";#import $protobuf from "protobufjs/minimal.js";#' "$out/$name.js"
  npx --no-install pbts --no-comments -o "$out/$name.d.ts" "$out/$name.js"
done
