# Convenience targets; the scripts under hack/ do the work.
.PHONY: build demo test bench clean

build:
	CGO_ENABLED=0 go build -trimpath -o _output/kproxy ./cmd/kproxy

demo:
	hack/demo.sh

test:
	hack/test.sh

bench:
	go run ./bench

clean:
	rm -rf _output
