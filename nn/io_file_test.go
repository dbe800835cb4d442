package nn

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// dirNames returns the sorted names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

// failingWriter fails once n bytes have been written.
type failingWriter struct {
	w io.Writer
	n int
}

var errInjected = errors.New("injected write error")

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		m, _ := f.w.Write(p[:f.n])
		f.n = 0
		return m, errInjected
	}
	f.n -= len(p)
	return f.w.Write(p)
}

// TestSaveFileNoTemporary checks that no temporary file is left after a
// successful save, a failed write and a failed Save, and that a failed
// save leaves the previous file intact.
func TestSaveFileNoTemporary(t *testing.T) {
	net, data := savedNet(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "net.bin")
	if err := net.SaveFile(path); err != nil {
		t.Fatal(err)
	}
	if err := net.SaveFile(path); err != nil { // over an existing file
		t.Fatal(err)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"net.bin"}) {
		t.Errorf("after saves, directory holds %q", names)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != string(data) {
		t.Fatalf("saved file differs (%v)", err)
	}

	defer func(w func(*os.File) io.Writer) { saveFileWriter = w }(saveFileWriter)
	saveFileWriter = func(f *os.File) io.Writer { return &failingWriter{w: f, n: 10} }
	other := New([]int{3, 4, 2, 3}, []Activation{ReLU{}, Tanh{}, Softmax{}})
	if err := other.SaveFile(path); !errors.Is(err, errInjected) {
		t.Errorf("failed write: error %v", err)
	}
	// Save itself fails (after the temporary is created).
	saveFileWriter = func(f *os.File) io.Writer { return f }
	custom := New([]int{2, 2}, []Activation{customAct{}})
	if err := custom.SaveFile(path); err == nil || !strings.Contains(err.Error(), "no file id") {
		t.Errorf("custom activation: error %v", err)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"net.bin"}) {
		t.Errorf("after failed saves, directory holds %q", names)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != string(data) {
		t.Errorf("failed saves changed the file (%v)", err)
	}
}

// TestSaveFileStaleTemporaries checks that SaveFile removes the stale
// temporaries of its file, and only those.
func TestSaveFileStaleTemporaries(t *testing.T) {
	net, _ := savedNet(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "net.bin")
	old := time.Now().Add(-2 * time.Hour)
	files := map[string]bool{ // name: removed
		".net.bin.tmp-abc123":    true,
		"net.bin.tmp1234567":     true,  // os.CreateTemp name of earlier versions
		".net.bin.tmp-young":     false, // may be a save in progress
		".other.tmp-abc":         false, // another file's
		"net.bin.tmpx":           false, // not a temporary name
		"net.bin.tmp12345678901": false,
	}
	for name := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
		if name != ".net.bin.tmp-young" {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A stale-looking directory is not removed.
	if err := os.Mkdir(filepath.Join(dir, ".net.bin.tmp-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(filepath.Join(dir, ".net.bin.tmp-dir"), old, old)
	if err := net.SaveFile(path); err != nil {
		t.Fatal(err)
	}
	want := []string{".net.bin.tmp-dir", "net.bin"}
	for name, removed := range files {
		if !removed {
			want = append(want, name)
		}
	}
	slices.Sort(want)
	if names := dirNames(t, dir); !slices.Equal(names, want) {
		t.Errorf("directory holds %q, want %q", names, want)
	}
}
