# Convenience targets; the scripts under hack/ do the work.
.PHONY: build demo test test-kind kind-up kind-down bench clean

build:
	CGO_ENABLED=0 go build -trimpath -o _output/kproxy ./cmd/kproxy

demo:
	hack/demo.sh

test:
	hack/test.sh

test-kind:
	hack/test-kind.sh

kind-up:
	hack/kind-offline.sh up

kind-down:
	hack/kind-offline.sh down

bench:
	go run ./bench

clean:
	rm -rf _output
