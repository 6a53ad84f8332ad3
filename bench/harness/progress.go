package harness

import (
	"fmt"
	"io"
	"time"
)

// progress prints timestamped lines, so a long run shows where it is.
type progress struct {
	w     io.Writer
	start time.Time
}

func (p *progress) logf(format string, args ...any) {
	if p.w == nil {
		return
	}
	el := time.Since(p.start).Round(time.Second)
	fmt.Fprintf(p.w, "[%8s] %s\n", el, fmt.Sprintf(format, args...))
}
