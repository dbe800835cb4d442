package checkpoint

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testCheckpoints are fixed checkpoints: several files (one empty), flags
// whose values need quoting, none at all.
func testCheckpoints() []Checkpoint {
	return []Checkpoint{
		{
			Updates: 500, Trained: 12345678901,
			Flags: []Flag{{"opt", "kfac"}, {"lr", ""}, {"arch", "784-16-784"}, {"note", "a \"quoted\" value\nover two lines"}},
			Files: map[string][]byte{
				"network.nn":    bytes.Repeat([]byte{0, 1, 2, 255}, 1000),
				"optimizer.bin": []byte("optimizer state"),
				"batches.bin":   {},
				"rng.bin":       {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, '\n'},
			},
		},
		{Updates: 0, Trained: 0, Files: map[string][]byte{}},
		{Updates: 1, Trained: time.Nanosecond, Flags: []Flag{{"x", " "}}, Files: map[string][]byte{"only": []byte("x")}},
	}
}

// names returns the entries of dir, sorted.
func names(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, e := range entries {
		s = append(s, e.Name())
	}
	return strings.Join(s, " ")
}

// equal reports whether the content of a and b is the same, Generation
// aside; nil and empty flags are the same.
func equal(a, b *Checkpoint) bool {
	return a.Updates == b.Updates && a.Trained == b.Trained &&
		len(a.Flags) == len(b.Flags) && (len(a.Flags) == 0 || reflect.DeepEqual(a.Flags, b.Flags)) &&
		len(a.Files) == len(b.Files) && reflect.DeepEqual(a.Files, b.Files)
}

func TestRoundTrip(t *testing.T) {
	for i, want := range testCheckpoints() {
		dir := filepath.Join(t.TempDir(), "ck") // Save creates it
		if ok, err := Exists(dir); ok || err != nil {
			t.Fatalf("case %d: Exists before Save = %v, %v", i, ok, err)
		}
		if _, err := Load(dir); !errors.Is(err, ErrNotFound) {
			t.Errorf("case %d: Load before Save: %v, want ErrNotFound", i, err)
		}
		c := want
		if err := Save(dir, &c); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if c.Generation != 1 {
			t.Errorf("case %d: generation %d after the first Save, want 1", i, c.Generation)
		}
		if ok, err := Exists(dir); !ok || err != nil {
			t.Errorf("case %d: Exists after Save = %v, %v", i, ok, err)
		}
		got, err := Load(dir)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if !equal(got, &want) || got.Generation != 1 {
			t.Errorf("case %d: loaded %+v, want %+v", i, got, want)
		}
		if err := got.CheckFlags(want.Flags); err != nil {
			t.Errorf("case %d: CheckFlags of the saved flags: %v", i, err)
		}
		if n := names(t, dir); n != "g000001 manifest" {
			t.Errorf("case %d: directory holds %s", i, n)
		}
		if got.Dir(dir) != filepath.Join(dir, "g000001") {
			t.Errorf("case %d: Dir %s", i, got.Dir(dir))
		}
	}
}

// TestSaveReplaces checks that each save replaces the checkpoint in force
// and removes the previous generation, files it no longer has included.
func TestSaveReplaces(t *testing.T) {
	dir := t.TempDir()
	cks := testCheckpoints()
	for i := range cks {
		if err := Save(dir, &cks[i]); err != nil {
			t.Fatal(err)
		}
		got, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !equal(got, &cks[i]) || got.Generation != i+1 || cks[i].Generation != i+1 {
			t.Errorf("save %d: loaded %+v (generation %d), want %+v (generation %d)", i, got, got.Generation, cks[i], i+1)
		}
		if n, want := names(t, dir), generationDir(i+1)+" manifest"; n != want {
			t.Errorf("save %d: directory holds %s, want %s", i, n, want)
		}
	}
	if n := names(t, filepath.Join(dir, generationDir(3))); n != "only" {
		t.Errorf("last generation holds %s, want only", n)
	}
}

// copyTree copies the directory src, files and directories only, to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestKilledSave snapshots the directory at every stage of a save, as a
// process killed there would leave it, and checks that each snapshot
// loads as the previous checkpoint (before the manifest's rename) or the
// new one (after), and that a save from it replaces every leftover.
func TestKilledSave(t *testing.T) {
	cks := testCheckpoints()
	prev, next := cks[0], cks[2]
	dir := t.TempDir()
	if err := Save(dir, &prev); err != nil {
		t.Fatal(err)
	}
	type snapshot struct {
		stage string
		dir   string
	}
	var snaps []snapshot
	testHook = func(stage string) {
		s := snapshot{stage, filepath.Join(t.TempDir(), stage)}
		copyTree(t, dir, s.dir)
		snaps = append(snaps, s)
	}
	err := Save(dir, &next)
	testHook = nil
	if err != nil {
		t.Fatal(err)
	}
	var stages []string
	for _, s := range snaps {
		stages = append(stages, s.stage)
	}
	if got, want := strings.Join(stages, " "), "tmp-created file-written generation-renamed manifest-written manifest-renamed"; got != want {
		t.Fatalf("stages %s, want %s", got, want)
	}
	for _, s := range snaps {
		got, err := Load(s.dir)
		if err != nil {
			t.Errorf("killed after %s: %v", s.stage, err)
			continue
		}
		want, gen := &prev, 1
		if s.stage == "manifest-renamed" {
			want, gen = &next, 2
		}
		if !equal(got, want) || got.Generation != gen {
			t.Errorf("killed after %s: loaded %+v, want %+v of generation %d", s.stage, got, *want, gen)
		}
		if n := names(t, s.dir); !strings.Contains(n, ".tmp-") && !strings.Contains(n, "g000002") {
			t.Errorf("killed after %s: no leftover in %s", s.stage, n)
		}
		third := cks[1]
		if err := Save(s.dir, &third); err != nil {
			t.Errorf("killed after %s: the next save: %v", s.stage, err)
			continue
		}
		if n, want := names(t, s.dir), generationDir(gen+1)+" manifest"; n != want {
			t.Errorf("killed after %s, then saved: directory holds %s, want %s", s.stage, n, want)
		}
		if got, err := Load(s.dir); err != nil || !equal(got, &cks[1]) {
			t.Errorf("killed after %s, then saved: loaded %+v, %v", s.stage, got, err)
		}
	}
}

// TestLeftovers checks hand-made leftovers of killed saves: temporaries,
// a next generation without its manifest (half written, or complete), a
// temporary manifest.
func TestLeftovers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string // path under the directory: content
	}{
		{"tmp dir", map[string]string{".tmp-123/network.nn": "half"}},
		{"empty tmp dir", map[string]string{".tmp-9/": ""}},
		{"next generation", map[string]string{"g000002/only": "x"}},
		{"later generation", map[string]string{"g000007/rng.bin": "half"}},
		{"tmp manifest", map[string]string{".manifest.tmp-456": "checkpoint 1\ngeneration 2\n"}},
		{"all", map[string]string{".tmp-1/a": "", "g000002/only": "y", ".manifest.tmp-2": "half"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cks := testCheckpoints()
			if err := Save(dir, &cks[0]); err != nil {
				t.Fatal(err)
			}
			for path, content := range tc.files {
				p := filepath.Join(dir, path)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if !strings.HasSuffix(path, "/") {
					if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			got, err := Load(dir)
			if err != nil || !equal(got, &cks[0]) || got.Generation != 1 {
				t.Fatalf("with leftovers: loaded %+v, %v; want the checkpoint of generation 1", got, err)
			}
			if err := Save(dir, &cks[2]); err != nil {
				t.Fatal(err)
			}
			if got, err = Load(dir); err != nil || !equal(got, &cks[2]) || got.Generation != 2 {
				t.Fatalf("after the next save: %+v, %v", got, err)
			}
			if n := names(t, dir); n != "g000002 manifest" {
				t.Errorf("directory holds %s, want g000002 manifest", n)
			}
		})
	}
}

// seal returns the manifest of body (lines without the checksum) with its
// checksum line.
func seal(body string) []byte {
	return []byte(body + "sha256 " + hexSum([]byte(body)) + "\n")
}

// TestLoadCorrupt checks that altered, truncated or missing parts of a
// checkpoint are errors wrapping ErrCorrupt (ErrNotFound for a missing
// manifest) that name the part.
func TestLoadCorrupt(t *testing.T) {
	fileSum := func(b []byte) string { return hexSum(b) }
	for _, tc := range []struct {
		name  string
		alter func(dir, manifest, gen string) error
		want  string // in the error
	}{
		{"no manifest", func(dir, m, _ string) error { return os.Remove(m) }, "no checkpoint"},
		{"manifest byte", func(dir, m, _ string) error { return flip(m, 30) }, "manifest does not match its checksum"},
		{"manifest truncated", func(dir, m, _ string) error { return truncate(m, 40) }, "manifest does not match its checksum"},
		{"manifest empty", func(dir, m, _ string) error { return os.WriteFile(m, nil, 0o644) }, "manifest does not match its checksum"},
		{"manifest appended", func(dir, m, _ string) error { return appendTo(m, "file x 0 00\n") }, "manifest does not match its checksum"},
		{"manifest version", func(dir, m, _ string) error {
			return rewrite(m, func(s string) string { return strings.Replace(s, "checkpoint 1\n", "checkpoint 2\n", 1) })
		}, "line 1"},
		{"manifest unknown line", func(dir, m, _ string) error {
			return rewrite(m, func(s string) string { return s + "color blue\n" })
		}, `"color blue"`},
		{"manifest negative updates", func(dir, m, _ string) error {
			return rewrite(m, func(s string) string { return strings.Replace(s, "updates 500\n", "updates -1\n", 1) })
		}, "-1 updates"},
		{"manifest without updates", func(dir, m, _ string) error {
			return rewrite(m, func(s string) string { return strings.Replace(s, "updates 500\n", "", 1) })
		}, "missing"},
		{"manifest duplicate flag", func(dir, m, _ string) error {
			return rewrite(m, func(s string) string { return s + "flag opt \"sgd\"\n" })
		}, "flag opt"},
		{"manifest bad quote", func(dir, m, _ string) error {
			return rewrite(m, func(s string) string { return strings.Replace(s, `flag opt "kfac"`, `flag opt kfac`, 1) })
		}, "flag opt kfac"},
		{"manifest names a missing file", func(dir, m, _ string) error {
			return rewrite(m, func(s string) string { return s + "file extra 1 " + fileSum([]byte("x")) + "\n" })
		}, "extra"},
		{"file byte", func(dir, _, gen string) error { return flip(filepath.Join(gen, "optimizer.bin"), 3) },
			"optimizer.bin does not match its size and SHA-256"},
		{"file truncated", func(dir, _, gen string) error { return truncate(filepath.Join(gen, "network.nn"), 100) },
			"network.nn does not match its size and SHA-256"},
		{"file appended", func(dir, _, gen string) error { return appendTo(filepath.Join(gen, "batches.bin"), "x") },
			"batches.bin does not match"},
		{"file missing", func(dir, _, gen string) error { return os.Remove(filepath.Join(gen, "rng.bin")) }, "rng.bin"},
		{"generation missing", func(dir, _, gen string) error { return os.RemoveAll(gen) }, "g000001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c := testCheckpoints()[0]
			if err := Save(dir, &c); err != nil {
				t.Fatal(err)
			}
			if err := tc.alter(dir, filepath.Join(dir, ManifestName), c.Dir(dir)); err != nil {
				t.Fatal(err)
			}
			got, err := Load(dir)
			want := ErrCorrupt
			if tc.name == "no manifest" {
				want = ErrNotFound
			}
			if !errors.Is(err, want) || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "checkpoint: ") {
				t.Errorf("error %v, want one wrapping %q that contains %q", err, want, tc.want)
			}
			if got != nil {
				t.Errorf("Load returned %+v with the error", got)
			}
			// A new save replaces the corrupt checkpoint.
			c2 := testCheckpoints()[2]
			if err := Save(dir, &c2); err != nil {
				t.Fatal(err)
			}
			if got, err := Load(dir); err != nil || !equal(got, &c2) {
				t.Errorf("save over the corrupt checkpoint: loaded %+v, %v", got, err)
			}
		})
	}
}

func flip(path string, i int) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	b[i] ^= 0x10
	return os.WriteFile(path, b, 0o644)
}

func truncate(path string, n int) error { return os.Truncate(path, int64(n)) }

func appendTo(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// rewrite changes the body of the manifest at path by edit and seals it
// with a matching checksum, so that only the parse can refuse it.
func rewrite(path string, edit func(string) string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	body, _, _ := cutLastLine(b)
	return os.WriteFile(path, seal(edit(string(body))), 0o644)
}

// TestSaveRefuses checks the checkpoints that Save refuses before writing
// anything.
func TestSaveRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Checkpoint
		want string
	}{
		{"negative updates", Checkpoint{Updates: -1}, "-1 updates"},
		{"negative time", Checkpoint{Trained: -time.Second}, "-1s of training"},
		{"empty flag name", Checkpoint{Flags: []Flag{{"", "x"}}}, `flag name ""`},
		{"flag name with space", Checkpoint{Flags: []Flag{{"a b", "x"}}}, `flag name "a b"`},
		{"flag twice", Checkpoint{Flags: []Flag{{"a", "x"}, {"a", "y"}}}, "flag a given twice"},
		{"empty file name", Checkpoint{Files: map[string][]byte{"": nil}}, `file name ""`},
		{"file name with separator", Checkpoint{Files: map[string][]byte{"a/b": nil}}, `file name "a/b"`},
		{"file name with dot", Checkpoint{Files: map[string][]byte{"..": nil}}, `file name ".."`},
		{"file name with space", Checkpoint{Files: map[string][]byte{"a b": nil}}, `file name "a b"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ck")
			err := Save(dir, &tc.c)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "checkpoint: ") {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused Save created %s", dir)
			}
		})
	}
}

func TestCheckFlags(t *testing.T) {
	c := &Checkpoint{Flags: []Flag{{"opt", "sgd"}, {"lr", ""}, {"seed", "1"}}}
	for _, tc := range []struct {
		flags []Flag
		want  *FlagError
	}{
		{nil, nil},
		{[]Flag{{"seed", "1"}, {"opt", "sgd"}}, nil},
		{[]Flag{{"opt", "sgd"}, {"lr", ""}, {"seed", "1"}}, nil},
		{[]Flag{{"opt", "adam"}}, &FlagError{Name: "opt", Value: "adam", Saved: "sgd"}},
		{[]Flag{{"opt", "sgd"}, {"lr", "0.1"}, {"seed", "2"}}, &FlagError{Name: "lr", Value: "0.1", Saved: ""}},
		{[]Flag{{"batch", "100"}}, &FlagError{Name: "batch", Value: "100", Missing: true}},
	} {
		err := c.CheckFlags(tc.flags)
		var fe *FlagError
		switch {
		case tc.want == nil && err != nil:
			t.Errorf("%v: %v, want nil", tc.flags, err)
		case tc.want != nil && (!errors.As(err, &fe) || *fe != *tc.want):
			t.Errorf("%v: %v, want %+v", tc.flags, err, *tc.want)
		case tc.want != nil && !strings.HasPrefix(err.Error(), "checkpoint: flag "+tc.want.Name+" "):
			t.Errorf("%v: message %q", tc.flags, err)
		}
	}
}

func TestExistsNotDirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if ok, err := Exists(file); ok || err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("Exists(file) = %v, %v; want an error", ok, err)
	}
	if err := Save(file, &Checkpoint{}); err == nil {
		t.Error("Save into a file succeeded")
	}
	// A manifest alone is a checkpoint for Exists, whatever it holds.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ManifestName), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if ok, err := Exists(dir); !ok || err != nil {
		t.Errorf("Exists with a manifest = %v, %v", ok, err)
	}
}
