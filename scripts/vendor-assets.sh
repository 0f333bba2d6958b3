#!/usr/bin/env bash
# Copy the browser's third-party modules and styles from node_modules/ into cypher/static/vendor/.
# No bundler: native ES modules, so the two bare imports inside zxcvbn-ts are rewritten to the
# relative paths of their vendored copies. Run by `make install` after `npm ci`.
set -euo pipefail
cd "$(dirname "$0")/.."
src=node_modules
out=cypher/static/vendor
rm -rf "$out.tmp"
mkdir -p "$out.tmp"

cp "$src/@serenity-kit/opaque/esm/index.js" "$out.tmp/opaque.js"

mkdir -p "$out.tmp/bootstrap" "$out.tmp/bootstrap-icons"
cp "$src/bootstrap/dist/css/bootstrap.min.css" "$out.tmp/bootstrap/"
cp "$src/bootstrap-icons/font/bootstrap-icons.min.css" "$out.tmp/bootstrap-icons/"
cp -r "$src/bootstrap-icons/font/fonts" "$out.tmp/bootstrap-icons/"

mkdir -p "$out.tmp/zxcvbn-ts" "$out.tmp/fastest-levenshtein"
for package in core language-common language-en dictionary-compression; do
    mkdir -p "$out.tmp/zxcvbn-ts/$package"
    (cd "$src/@zxcvbn-ts/$package/dist" && find . -name '*.mjs' -exec cp --parents {} "$OLDPWD/$out.tmp/zxcvbn-ts/$package/" \;)
done
cp "$src/fastest-levenshtein/esm/mod.js" "$out.tmp/fastest-levenshtein/mod.js"
# Bare specifiers -> paths relative to the importing file (every importer sits at some depth
# below vendor/zxcvbn-ts/<package>/).
find "$out.tmp/zxcvbn-ts" -name '*.mjs' | while read -r file; do
    depth=$(($(echo "${file#"$out.tmp/"}" | tr -cd '/' | wc -c)))
    up=$(printf '../%.0s' $(seq 1 "$depth"))
    sed -i \
        -e "s#from '@zxcvbn-ts/dictionary-compression/decompress'#from '${up}zxcvbn-ts/dictionary-compression/decompress.mjs'#" \
        -e "s#from 'fastest-levenshtein'#from '${up}fastest-levenshtein/mod.js'#" \
        "$file"
done

rm -rf "$out"
mv "$out.tmp" "$out"
