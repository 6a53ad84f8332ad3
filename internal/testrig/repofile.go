package testrig

// RepoFile returns the path of rel (e.g. "hack/fetch-haproxy.sh") in the
// kproxy checkout, found by walking up from the working directory.
func RepoFile(rel string) (string, error) { return findRepoFile(rel) }
