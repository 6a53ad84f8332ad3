// Package mdsection rewrites generated sections of Markdown files: the text
// between "<!-- NAME:begin -->" and "<!-- NAME:end -->" lines, so figures in
// a README come from the results that produced them, never typed by hand.
package mdsection

import (
	"fmt"
	"os"
	"strings"
)

// Markers returns the begin and end lines of section name.
func Markers(name string) (begin, end string) {
	return "<!-- " + name + ":begin -->", "<!-- " + name + ":end -->"
}

// Get returns the body of section name in text (without the markers).
func Get(text, name string) (string, error) {
	begin, end := Markers(name)
	i, j := strings.Index(text, begin), strings.Index(text, end)
	if i < 0 || j < i {
		return "", fmt.Errorf("no %s ... %s section", begin, end)
	}
	return strings.TrimPrefix(text[i+len(begin):j], "\n"), nil
}

// Replace returns text with the body of section name replaced by body.
func Replace(text, name, body string) (string, error) {
	begin, end := Markers(name)
	i, j := strings.Index(text, begin), strings.Index(text, end)
	if i < 0 || j < i {
		return "", fmt.Errorf("no %s ... %s section", begin, end)
	}
	if body != "" && !strings.HasSuffix(body, "\n") {
		body += "\n"
	}
	return text[:i] + begin + "\n" + body + text[j:], nil
}

// ReplaceInFile rewrites section name of the file at path.
func ReplaceInFile(path, name, body string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	text, err := Replace(string(b), name, body)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, []byte(text), 0o644)
}
