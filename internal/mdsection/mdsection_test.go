package mdsection

import "testing"

func TestReplaceAndGet(t *testing.T) {
	text := "head\n<!-- figs:begin -->\nold\n<!-- figs:end -->\ntail\n"
	got, err := Replace(text, "figs", "new 1\nnew 2")
	if err != nil {
		t.Fatal(err)
	}
	want := "head\n<!-- figs:begin -->\nnew 1\nnew 2\n<!-- figs:end -->\ntail\n"
	if got != want {
		t.Fatalf("Replace:\n%q\nwant\n%q", got, want)
	}
	body, err := Get(got, "figs")
	if err != nil || body != "new 1\nnew 2\n" {
		t.Fatalf("Get = %q, %v", body, err)
	}
}

func TestMissingSection(t *testing.T) {
	for _, text := range []string{"none", "<!-- figs:end -->\n<!-- figs:begin -->\n"} {
		if _, err := Replace(text, "figs", "x"); err == nil {
			t.Errorf("Replace(%q) succeeded", text)
		}
		if _, err := Get(text, "figs"); err == nil {
			t.Errorf("Get(%q) succeeded", text)
		}
	}
}
