#!/usr/bin/env bash
# Refresh the GraphiQL build served at GET /graphql/ (project/static/graphiql/) from the npm registry.
#
#   bash scripts/vendor_graphiql.sh      (or `make graphiql-assets`)
#
# GraphiQL must load nothing from another host (offline, walled gardens, a strict Content-Security-
# Policy), so its files are committed. To upgrade, change a version below, run this, try GraphiQL
# (`make run`, then http://127.0.0.1:8000/graphql/) and run tests/e2e/test_graphiql_offline.py.
# Needs npm; writes only project/static/graphiql/, where graphiql-init.* are ours and are kept.
set -euo pipefail

REACT_VERSION=18.3.1
GRAPHIQL_VERSION=3.8.3
# 3.2.5 is the last release built against the @graphiql/react (0.28) that graphiql 3.8 bundles.
EXPLORER_VERSION=3.2.5
# graphiql bundles a graphql-ws client but hides it; graphiql-init.js needs its own to choose the
# connection_init payload and not to retry a socket the server refused.
GRAPHQL_WS_VERSION=6.4.2

# package@version, then the files to take from it: "path in the package:name served".
PACKAGES=(
    "react@$REACT_VERSION" "umd/react.production.min.js:react.production.min.js"
    "react-dom@$REACT_VERSION" "umd/react-dom.production.min.js:react-dom.production.min.js"
    "graphiql@$GRAPHIQL_VERSION" "graphiql.min.js:graphiql.min.js graphiql.min.css:graphiql.min.css"
    "@graphiql/plugin-explorer@$EXPLORER_VERSION" "dist/index.umd.js:plugin-explorer.umd.js dist/style.css:plugin-explorer.css"
    "graphql-ws@$GRAPHQL_WS_VERSION" "umd/graphql-ws.min.js:graphql-ws.min.js"
)

command -v npm >/dev/null || { echo "vendor_graphiql.sh needs npm (Node.js)" >&2; exit 1; }

repo="$(cd "$(dirname "$0")/.." && pwd)"
target="$repo/project/static/graphiql"
workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT
staging="$workdir/staging"
mkdir -p "$staging/licenses"

for ((i = 0; i < ${#PACKAGES[@]}; i += 2)); do
    spec="${PACKAGES[i]}"
    # npm checks the tarball against the registry's integrity hash; VERSIONS.txt records that hash.
    (cd "$workdir" && npm pack --json --silent "$spec") >"$workdir/pack.json"
    read -r tarball integrity < <(node -e \
        'const [p] = JSON.parse(require("fs").readFileSync(process.argv[1])); console.log(p.filename, p.integrity)' \
        "$workdir/pack.json")
    unpacked="$workdir/package-$i"
    mkdir -p "$unpacked"
    tar -xzf "$workdir/$tarball" -C "$unpacked"
    license="$(node -p 'require(process.argv[1]).license' "$unpacked/package/package.json")"
    echo "  $spec ($license)  $integrity" >>"$workdir/versions"
    for mapping in ${PACKAGES[i + 1]}; do
        # Drop the sourceMappingURL comments: the .map files are not vendored, and hashed static
        # storage (collectstatic with a manifest) refuses to process a file that names a missing one.
        sed -E '/^\/[/*]# sourceMappingURL=.*$/d' "$unpacked/package/${mapping%%:*}" >"$staging/${mapping##*:}"
    done
    # MIT asks for the notice to travel with the code (the explorer plugin ships none of its own).
    name="${spec%@*}"
    for notice in "$unpacked"/package/LICENSE*; do
        if [ -e "$notice" ]; then cp "$notice" "$staging/licenses/${name//\//-}.txt"; fi
    done
done

{
    echo "GraphiQL for GET /graphql/, vendored from the npm registry by scripts/vendor_graphiql.sh"
    echo "(do not edit these files: change the versions in that script and run it again)."
    echo "graphiql-init.js and graphiql-init.css are this project's own: the page's script and style"
    echo "(files, not inline, so the Content-Security-Policy allows no inline script or style)."
    echo
    echo "Packages (npm tarball integrity):"
    cat "$workdir/versions"
    echo
    echo "Files (sha256):"
    (cd "$staging" && find . -type f | sed 's|^\./||' | sort | xargs sha256sum | sed 's/^/  /')
} >"$workdir/VERSIONS.txt"
mv "$workdir/VERSIONS.txt" "$staging/"

mkdir -p "$target"
find "$target" -mindepth 1 -maxdepth 1 ! -name 'graphiql-init.*' -exec rm -rf {} +
cp -R "$staging"/. "$target/"
echo "Vendored into $target:"
sed -n '/^Packages/,$p' "$target/VERSIONS.txt"
