//go:build unix

package nn

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestSaveFileMode checks that SaveFile creates the file with mode 0666
// less the umask, as os.Create does.
func TestSaveFileMode(t *testing.T) {
	net, _ := savedNet(t)
	defer syscall.Umask(syscall.Umask(0o022))
	for _, c := range []struct {
		umask int
		want  os.FileMode
	}{{0o022, 0o644}, {0o077, 0o600}, {0o002, 0o664}} {
		syscall.Umask(c.umask)
		path := filepath.Join(t.TempDir(), "net.bin")
		if err := net.SaveFile(path); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != c.want {
			t.Errorf("umask %03o: mode %v, want %v", c.umask, got, c.want)
		}
	}
}
