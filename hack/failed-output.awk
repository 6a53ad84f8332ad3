#!/usr/bin/awk -f
# Reads `go test -v` output and prints, for each test that failed, the last
# 40 lines it logged (t.Log/t.Error lines and their continuation lines).
# -v output interleaves tests; "=== RUN/CONT/NAME" lines say whose
# output follows.
/^=== (RUN|CONT|NAME|PAUSE)/ { current = $3; next }
/^ *--- FAIL: / { failed[$3] = 1; order[++nfailed] = $3; next }
/^ *--- (PASS|SKIP): / { next }
/^    / && current != "" {
	n = ++count[current]
	lines[current, n] = $0
}
END {
	for (i = 1; i <= nfailed; i++) {
		name = order[i]
		print "--- FAIL: " name
		first = count[name] > 40 ? count[name] - 39 : 1
		for (j = first; j <= count[name]; j++) print lines[name, j]
	}
}
