#!/bin/sh
# The plugin's sources are layered (nccl-net-plugin/CMakeLists.txt,
# docs/architecture.md): a file's layer is its folder under src/, and a file
# may include only headers of its own layer or of layers below it. Fails on
# an include of a higher layer, on an include cycle between any two files, on
# a source outside the layer folders, and on a layer-qualified include of a
# file that does not exist. Usage: check_layers.sh <plugin src dir>
set -eu
src=${1:?usage: check_layers.sh <nccl-net-plugin/src>}
# bottom up; keep in step with the comment in nccl-net-plugin/CMakeLists.txt
layers="base gpu placement engine conn api abi"
cd "$src"

# every source belongs to a layer: no loose files, no unknown folders
loose=$(find . -type f \( -name '*.c' -o -name '*.h' -o -name '*.cu' \) | sed 's|^\./||' |
	awk -v layers="$layers" '
		BEGIN { n = split(layers, l, " "); for (i = 1; i <= n; i++) ok[l[i]] = 1 }
		{ d = $0; sub(/\/.*/, "", d); if (index($0, "/") == 0 || !(d in ok)) print }')
if [ -n "$loose" ]; then
	echo "FAIL: sources outside the layer folders ($layers):"
	echo "$loose" | sed 's/^/  /'
	echo "move each into the folder of the layer it belongs to (see docs/architecture.md)"
	exit 1
fi

files=$(find . -type f \( -name '*.c' -o -name '*.h' -o -name '*.cu' \) | sed 's|^\./||' | sort)
# "file<TAB>included name" for every #include "..." line
for f in $files; do
	sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" |
		while read -r inc; do
			# where the compiler finds it: beside the includer, else under src/
			dir=${f%/*}
			if [ -f "$dir/$inc" ]; then
				printf '%s\t%s\n' "$f" "$dir/$inc"
			elif [ -f "$inc" ]; then
				printf '%s\t%s\n' "$f" "$inc"
			elif other=$(ls -- */"$inc" 2>/dev/null | head -n 1) && [ -n "$other" ]; then
				# found only through an extra -I: counts as that layer's
				printf '%s\t%s\n' "$f" "$other"
			else
				printf '%s\t?%s\n' "$f" "$inc"
			fi
		done
done | awk -F '\t' -v layers="$layers" -v nfiles="$(echo "$files" | wc -l)" '
	BEGIN { n = split(layers, l, " "); for (i = 1; i <= n; i++) rank[l[i]] = i }
	function layer(p,   d) { d = p; sub(/\/.*/, "", d); return d }
	# "placement/../engine/engine.h" is engine/engine.h
	function norm(p,   n, c, i, k, out) {
		n = split(p, c, "/"); k = 0
		for (i = 1; i <= n; i++) {
			if (c[i] == "." || c[i] == "") continue
			if (c[i] == ".." && k > 0) { k--; continue }
			out[++k] = c[i]
		}
		p = out[1]
		for (i = 2; i <= k; i++) p = p "/" out[i]
		return p
	}
	{
		from = $1; to = $2
		if (substr(to, 1, 1) == "?") {
			to = substr(to, 2); d = layer(to)
			# a layer-qualified name must exist; others are outside src/
			# (ncclnet/, libgpudirect, the generated fatbin header)
			if (index(to, "/") && (d in rank)) {
				printf "FAIL: %s includes \"%s\", which does not exist\n", from, to
				bad = 1
			}
			next
		}
		to = norm(to)
		nedges++
		if (rank[layer(to)] > rank[layer(from)]) {
			printf "FAIL: %s (layer %s) includes %s (layer %s, above it): move what it needs down to the lowest layer that uses it\n", from, layer(from), to, layer(to)
			bad = 1
		}
		adj[from] = adj[from] " " to
		node[from] = 1; node[to] = 1
	}
	# depth-first search: an edge back to a file on the current path is a cycle
	function dfs(v,   k, m, e, i) {
		state[v] = 1; path[++depth] = v
		m = split(adj[v], e, " ")
		for (i = 1; i <= m; i++) {
			if (state[e[i]] == 1) {
				printf "FAIL: include cycle:"
				for (k = 1; k <= depth; k++)
					if (k >= pos[e[i]])
						printf " %s ->", path[k]
				printf " %s\n", e[i]
				bad = 1
			} else if (!state[e[i]]) {
				pos[e[i]] = depth + 1
				dfs(e[i])
			}
		}
		depth--; state[v] = 2
	}
	END {
		for (v in node)
			if (!state[v]) { pos[v] = 1; depth = 0; dfs(v) }
		if (bad)
			exit 1
		printf "layers (bottom up): %s\n%d files, %d includes within src/, none upward, no cycle\nPASS\n", layers, nfiles, nedges
	}'
