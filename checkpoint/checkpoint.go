// Package checkpoint saves and loads the checkpoints of a training run:
// directories that hold, atomically and with checksums, the run's state
// files (a network, an optimizer, a minibatch iterator, a random source, as
// opaque bytes), the number of updates and the training time so far, and
// the flags that define the run. It knows nothing of networks or
// optimizers: the caller marshals its state into named files (for
// instance with nn's Network.Save and the MarshalBinary of optim's
// optimizers, datasets.Batches and *rand.PCG) and unmarshals them after
// Load.
//
// # Layout
//
// A checkpoint directory DIR holds
//
//	DIR/manifest      the checkpoint in force, a text file written last
//	DIR/gNNNNNN/      the state files of generation NNNNNN (1, 2, …, at
//	                  least six digits), named by the manifest
//
// and, only while a save runs or after one was killed, temporaries
// DIR/.tmp-* and DIR/.manifest.tmp-*. The manifest holds, one per line,
// values quoted as by strconv.Quote:
//
//	checkpoint 1                      (format and version)
//	generation 3
//	updates 500
//	training-ns 12345678901           (training time, nanoseconds)
//	flag opt "kfac"                   (one line per Flag, in order)
//	…
//	file network.nn 25432 <SHA-256, hex>   (one line per file, by name)
//	…
//	sha256 <SHA-256 of the lines above, hex>
//
// # Crash safety
//
// Save writes the state files into a new directory DIR/.tmp-*, syncs each
// file and the directory, renames it to DIR/gNNNNNN (the generation after
// the one in force), then writes the manifest as DIR/.manifest.tmp-*,
// syncs it, renames it over DIR/manifest and syncs DIR. Only then does it
// remove the other generations and leftover temporaries. Renames within a
// directory are atomic, so a process killed at any moment leaves a
// manifest that names a complete, synced generation: the previous
// checkpoint or the new one. Leftovers of a killed save are never read,
// and the next Save replaces or removes them. A single process may write a
// directory at a time; Save takes no lock.
//
// Load reads the manifest, checks its checksum, then each file's size and
// SHA-256: any difference is an error wrapping ErrCorrupt, so that a
// checkpoint that was altered, truncated or half-copied is refused rather
// than resumed. The caller's decoders should check their own data too.
package checkpoint

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// ErrNotFound is wrapped by the error of Load for a directory that holds
// no checkpoint: no manifest (or no directory).
var ErrNotFound = errors.New("no checkpoint")

// ErrCorrupt is wrapped by the errors of Load for a checkpoint that
// cannot be read back: a manifest that does not match its checksum or
// cannot be parsed, a state file missing or not matching its size and
// SHA-256. Callers should wrap it too for state files their own decoders
// refuse.
var ErrCorrupt = errors.New("corrupt checkpoint")

// ManifestName is the name of the manifest in a checkpoint directory.
const ManifestName = "manifest"

const (
	magic   = "checkpoint"
	version = 1
)

// Flag is a setting that defines a run, such as a command-line flag, with
// its value as text. A resumed run should have the same flags: see
// Checkpoint.CheckFlags. Values of Flag are safe for concurrent use.
type Flag struct {
	Name  string // non-empty, without white space
	Value string // any text, "" included
}

// Checkpoint is the content of a checkpoint directory. A Checkpoint is safe
// for concurrent use by multiple goroutines as long as none modifies it (Save
// sets its Generation).
type Checkpoint struct {
	// Updates is the number of updates done, ≥ 0.
	Updates int
	// Trained is the training time so far, ≥ 0.
	Trained time.Duration
	// Flags are the settings that define the run, in the caller's order.
	// Their names must be distinct.
	Flags []Flag
	// Files are the state files, by name. A name is a plain file name:
	// non-empty, not starting with a dot, without white space or path
	// separators.
	Files map[string][]byte
	// Generation is the number of the directory DIR/gNNNNNN that holds
	// the files: set by Load and by Save, ignored by Save otherwise.
	Generation int
}

// Dir returns the directory of c's files in the checkpoint directory dir,
// dir/gNNNNNN for c.Generation.
func (c *Checkpoint) Dir(dir string) string {
	return filepath.Join(dir, generationDir(c.Generation))
}

// Flag returns the value of the flag name, and whether c records it.
func (c *Checkpoint) Flag(name string) (value string, ok bool) {
	for _, f := range c.Flags {
		if f.Name == name {
			return f.Value, true
		}
	}
	return "", false
}

// FlagError is the error of CheckFlags: a flag of the run that the
// checkpoint does not record, or records with another value. A FlagError is
// safe for concurrent use by multiple goroutines as long as none modifies it.
type FlagError struct {
	Name    string
	Value   string // in the run
	Saved   string // in the checkpoint, if Missing is false
	Missing bool   // the checkpoint does not record the flag
}

func (e *FlagError) Error() string {
	if e.Missing {
		return fmt.Sprintf("checkpoint: flag %s is not recorded by the checkpoint", e.Name)
	}
	return fmt.Sprintf("checkpoint: flag %s is %q, but the checkpoint was made with %q", e.Name, e.Value, e.Saved)
}

// CheckFlags returns a *FlagError for the first of flags that c does not
// record with the same value, and nil when c records them all. Flags of c
// that are not in flags are not checked.
func (c *Checkpoint) CheckFlags(flags []Flag) error {
	for _, f := range flags {
		v, ok := c.Flag(f.Name)
		if !ok {
			return &FlagError{Name: f.Name, Value: f.Value, Missing: true}
		}
		if v != f.Value {
			return &FlagError{Name: f.Name, Value: f.Value, Saved: v}
		}
	}
	return nil
}

// Exists reports whether dir holds a checkpoint, that is a manifest,
// without reading it. A dir that does not exist holds none; one that is
// not a directory is an error.
func Exists(dir string) (bool, error) {
	if fi, err := os.Stat(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("checkpoint: %w", err)
	} else if !fi.IsDir() {
		return false, fmt.Errorf("checkpoint: %s: not a directory", dir)
	}
	_, err := os.Lstat(filepath.Join(dir, ManifestName))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("checkpoint: %w", err)
}

// Load reads and verifies the checkpoint in dir. The error wraps
// ErrNotFound when dir holds no checkpoint and ErrCorrupt when the
// checkpoint does not match its checksums.
func Load(dir string) (*Checkpoint, error) {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("checkpoint: %s: %w: %s", dir, ErrCorrupt, fmt.Sprintf(format, args...))
	}
	mpath := filepath.Join(dir, ManifestName)
	data, err := os.ReadFile(mpath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("checkpoint: %s: %w (%s is missing)", dir, ErrNotFound, mpath)
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	body, sumLine, ok := cutLastLine(data)
	if !ok || sumLine != "sha256 "+hexSum(body) {
		return nil, corrupt("%s does not match its checksum", ManifestName)
	}
	c, sums, err := parseManifest(body)
	if err != nil {
		return nil, corrupt("%s: %v", ManifestName, err)
	}
	gen := c.Dir(dir)
	names := make([]string, 0, len(sums))
	for name := range sums {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		s := sums[name]
		path := filepath.Join(gen, name)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, corrupt("%v", err)
		}
		if len(b) != s.size || hexSum(b) != s.sum {
			return nil, corrupt("%s does not match its size and SHA-256 in the manifest", path)
		}
		c.Files[name] = b
	}
	return c, nil
}

// fileSum is a file's line of the manifest.
type fileSum struct {
	size int
	sum  string
}

// parseManifest parses the manifest without its checksum line.
func parseManifest(body []byte) (*Checkpoint, map[string]fileSum, error) {
	c := &Checkpoint{Files: make(map[string][]byte)}
	sums := make(map[string]fileSum)
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, len(body)+1)
	line := 0
	seen := make(map[string]bool)
	for sc.Scan() {
		line++
		text := sc.Text()
		bad := func() error { return fmt.Errorf("line %d: %q", line, text) }
		key, rest, _ := strings.Cut(text, " ")
		if line == 1 {
			if text != fmt.Sprintf("%s %d", magic, version) {
				return nil, nil, fmt.Errorf("line 1: %q, want %q", text, fmt.Sprintf("%s %d", magic, version))
			}
			continue
		}
		if key != "flag" && key != "file" {
			if seen[key] {
				return nil, nil, bad()
			}
			seen[key] = true
		}
		var err error
		switch key {
		case "generation":
			c.Generation, err = strconv.Atoi(rest)
		case "updates":
			c.Updates, err = strconv.Atoi(rest)
		case "training-ns":
			var ns int64
			ns, err = strconv.ParseInt(rest, 10, 64)
			c.Trained = time.Duration(ns)
		case "flag":
			// flag NAME "VALUE", the value quoted, perhaps with spaces.
			name, q, _ := strings.Cut(rest, " ")
			var v string
			v, err = strconv.Unquote(q)
			if _, dup := c.Flag(name); err == nil && (!validFlagName(name) || dup) {
				err = errors.New("bad flag")
			}
			c.Flags = append(c.Flags, Flag{name, v})
		case "file":
			f := strings.Split(rest, " ")
			if len(f) != 3 || validFileName(f[0]) != nil || len(f[2]) != 2*sha256.Size {
				return nil, nil, bad()
			}
			if _, dup := sums[f[0]]; dup {
				return nil, nil, bad()
			}
			var n int
			n, err = strconv.Atoi(f[1])
			if n < 0 {
				err = errors.New("negative size")
			}
			sums[f[0]] = fileSum{n, f[2]}
		default:
			return nil, nil, bad()
		}
		if err != nil {
			return nil, nil, bad()
		}
	}
	if line == 0 {
		return nil, nil, errors.New("empty")
	}
	if !seen["generation"] || !seen["updates"] || !seen["training-ns"] {
		return nil, nil, errors.New("missing generation, updates or training-ns")
	}
	if c.Generation < 1 || c.Updates < 0 || c.Trained < 0 {
		return nil, nil, fmt.Errorf("generation %d, %d updates, %v of training", c.Generation, c.Updates, c.Trained)
	}
	return c, sums, nil
}

// Save writes c into the checkpoint directory dir, creating dir if
// needed, as the generation after the one in force, and sets
// c.Generation to it. When Save returns nil, the checkpoint in dir is c
// and the previous generations are removed; when it fails or the process
// is killed while it runs, the checkpoint in dir is the previous one or c
// (see the package documentation).
func Save(dir string, c *Checkpoint) error {
	if err := c.validate(); err != nil {
		return err
	}
	gen, err := save(dir, c)
	if err != nil {
		return fmt.Errorf("checkpoint: saving in %s: %w", dir, err)
	}
	c.Generation = gen
	return nil
}

// validate checks what Save writes.
func (c *Checkpoint) validate() error {
	if c.Updates < 0 || c.Trained < 0 {
		return fmt.Errorf("checkpoint: %d updates, %v of training: want ≥ 0", c.Updates, c.Trained)
	}
	seen := make(map[string]bool, len(c.Flags))
	for _, f := range c.Flags {
		if !validFlagName(f.Name) {
			return fmt.Errorf("checkpoint: flag name %q: want non-empty, without white space", f.Name)
		}
		if seen[f.Name] {
			return fmt.Errorf("checkpoint: flag %s given twice", f.Name)
		}
		seen[f.Name] = true
	}
	for name := range c.Files {
		if err := validFileName(name); err != nil {
			return err
		}
	}
	return nil
}

func validFlagName(name string) bool {
	return name != "" && !strings.ContainsFunc(name, unicode.IsSpace)
}

func validFileName(name string) error {
	if name == "" || name[0] == '.' || strings.ContainsFunc(name, unicode.IsSpace) || strings.ContainsAny(name, `/\`) {
		return fmt.Errorf("checkpoint: file name %q: want a plain name, not starting with a dot, without white space or separators", name)
	}
	return nil
}

// testHook, when set by the tests, is called at each stage of a save,
// with the stage's name.
var testHook func(stage string)

func hook(stage string) {
	if testHook != nil {
		testHook(stage)
	}
}

// save writes c into dir and returns its generation.
func save(dir string, c *Checkpoint) (gen int, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	gen = nextGeneration(dir)
	names := make([]string, 0, len(c.Files))
	for name := range c.Files {
		names = append(names, name)
	}
	slices.Sort(names)

	tmp, err := os.MkdirTemp(dir, ".tmp-")
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	hook("tmp-created")
	for _, name := range names {
		if err := writeSynced(filepath.Join(tmp, name), c.Files[name]); err != nil {
			return 0, err
		}
		hook("file-written")
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp's is 0700
		return 0, err
	}
	if err := syncDir(tmp); err != nil {
		return 0, err
	}
	genPath := filepath.Join(dir, generationDir(gen))
	// A leftover of a save killed before its manifest: not in force.
	if err := os.RemoveAll(genPath); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, genPath); err != nil {
		return 0, err
	}
	hook("generation-renamed")

	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %d\n", magic, version)
	fmt.Fprintf(&b, "generation %d\nupdates %d\ntraining-ns %d\n", gen, c.Updates, c.Trained.Nanoseconds())
	for _, f := range c.Flags {
		fmt.Fprintf(&b, "flag %s %s\n", f.Name, strconv.Quote(f.Value))
	}
	for _, name := range names {
		fmt.Fprintf(&b, "file %s %d %s\n", name, len(c.Files[name]), hexSum(c.Files[name]))
	}
	fmt.Fprintf(&b, "sha256 %s\n", hexSum(b.Bytes()))
	mf, err := os.CreateTemp(dir, ".manifest.tmp-")
	if err != nil {
		return 0, err
	}
	_, err = mf.Write(b.Bytes())
	if err == nil {
		err = mf.Chmod(0o644) // CreateTemp's is 0600
	}
	if err == nil {
		err = mf.Sync()
	}
	if cerr := mf.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		hook("manifest-written")
		err = os.Rename(mf.Name(), filepath.Join(dir, ManifestName))
	}
	if err != nil {
		os.Remove(mf.Name())
		return 0, err
	}
	if err := syncDir(dir); err != nil {
		return 0, err
	}
	hook("manifest-renamed")

	// The new checkpoint is in force: remove the others and leftovers. A
	// failure here leaves only garbage that the next save removes.
	entries, err := os.ReadDir(dir)
	if err != nil {
		return gen, nil
	}
	keep := generationDir(gen)
	for _, e := range entries {
		n := e.Name()
		if n != keep && (strings.HasPrefix(n, ".tmp-") || strings.HasPrefix(n, ".manifest.tmp-") || isGenerationDir(n)) {
			os.RemoveAll(filepath.Join(dir, n))
		}
	}
	return gen, nil
}

// nextGeneration returns the generation after the one in force in dir: 1
// when dir holds no valid manifest, and then after every generation
// directory present, so that none in force is replaced.
func nextGeneration(dir string) int {
	if data, err := os.ReadFile(filepath.Join(dir, ManifestName)); err == nil {
		if body, sumLine, ok := cutLastLine(data); ok && sumLine == "sha256 "+hexSum(body) {
			if c, _, err := parseManifest(body); err == nil {
				return c.Generation + 1
			}
		}
	}
	last := 0
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if isGenerationDir(e.Name()) {
			if g, err := strconv.Atoi(e.Name()[1:]); err == nil {
				last = max(last, g)
			}
		}
	}
	return last + 1
}

// cutLastLine splits data, which must end with a newline, before its last
// line, returned without the newline.
func cutLastLine(data []byte) (body []byte, last string, ok bool) {
	if len(data) == 0 || data[len(data)-1] != '\n' {
		return nil, "", false
	}
	i := bytes.LastIndexByte(data[:len(data)-1], '\n') + 1
	return data[:i], string(data[i : len(data)-1]), true
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func generationDir(g int) string { return fmt.Sprintf("g%06d", g) }

// isGenerationDir reports whether name is that of a generation, g and at
// least six digits.
func isGenerationDir(name string) bool {
	if len(name) < 7 || name[0] != 'g' {
		return false
	}
	for _, r := range name[1:] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// writeSynced creates the file path with data and syncs it to disk.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir syncs the directory dir, so that the renames into it last.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
