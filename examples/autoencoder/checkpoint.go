package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/secondorder/secondorder/datasets"
	"github.com/secondorder/secondorder/nn"
	"github.com/secondorder/secondorder/optim"
)

// Checkpoints: -checkpoint DIR writes the state of the run into DIR every
// -checkpoint-every updates and at the end of training; -resume continues
// the run from it, with the same updates, minibatches and random draws as
// a run that was never interrupted.
//
// Layout of DIR:
//
//	DIR/manifest        the checkpoint in force, a text file written last
//	DIR/gNNNNNN/        the state files of generation NNNNNN, named by the
//	                    manifest:
//	    network.nn      the network, nn's file format (Network.Save):
//	                    parameters, batch normalisation's γ, β, ε, momentum
//	                    and running statistics, whitening U and μ
//	    optimizer.bin   the optimizer's MarshalBinary
//	    batches.bin     the datasets.Batches' MarshalBinary (order of the
//	                    rows, position in the epoch)
//	    rng.bin         the MarshalBinary of the run's *rand.PCG, the one
//	                    source of every random draw: initialisation, the
//	                    nnn whitening sample, minibatch order, K-FAC's
//	                    Monte-Carlo targets
//
// The manifest holds, one per line, values quoted as by strconv.Quote:
//
//	autoencoder-checkpoint 1
//	generation 3
//	updates 500
//	training-ns 12345678901           (training time so far, nanoseconds)
//	flag opt "kfac"                  (one line per flag that defines the
//	flag lr ""                        run; "" is a method flag left unset)
//	…
//	file network.nn 25432 <SHA-256, hex>
//	…
//	sha256 <SHA-256 of the bytes above, hex>
//
// A save writes the state files into a new directory DIR/.tmp-*, syncs
// them, renames it to DIR/gNNNNNN (the next generation), then writes the
// manifest as DIR/.manifest.tmp-*, syncs it, renames it over DIR/manifest
// and syncs DIR; only then does it remove the other generations and
// leftover temporaries. A process killed at any moment thus leaves a
// manifest that names a complete generation: the previous checkpoint or
// the new one. A single process writes DIR at a time.
//
// Loading checks the manifest's checksum, the flags (a resume with other
// flags is refused, naming the first that differs) and each file's size
// and SHA-256; the optimizer, the Batches and the network check their own
// data too.

// errCorrupt is wrapped by the errors of a checkpoint that cannot be
// read back: missing or altered files.
var errCorrupt = errors.New("corrupt checkpoint")

const (
	manifestName    = "manifest"
	manifestMagic   = "autoencoder-checkpoint"
	manifestVersion = 1
)

// stateFiles are the files of a generation, in manifest order.
var stateFiles = []string{"network.nn", "optimizer.bin", "batches.bin", "rng.bin"}

// runFlag is a flag that defines a run, with its value as given ("" for a
// method flag left unset).
type runFlag struct{ name, value string }

// runFlags returns the flags that define the run: a resume must give the
// same values.
func (c config) runFlags() []runFlag {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	of := func(o optional[float64]) string {
		if !o.set {
			return ""
		}
		return f(o.val)
	}
	oi := func(o optional[int]) string {
		if !o.set {
			return ""
		}
		return strconv.Itoa(o.val)
	}
	return []runFlag{
		{"opt", c.opt},
		{"arch", c.arch},
		{"batch", strconv.Itoa(c.batch)},
		{"seed", strconv.FormatUint(c.seed, 10)},
		{"loss", c.loss},
		{"init", c.init},
		{"init-scale", f(c.initScale)},
		{"norm", c.norm},
		{"lr", of(c.lr)},
		{"momentum", of(c.momentum)},
		{"nesterov", strconv.FormatBool(c.nesterov)},
		{"damping", of(c.damping)},
		{"norm-constraint", of(c.trust)},
		{"stats-batch", oi(c.statsBatch)},
		{"auto-rate", strconv.FormatBool(c.autoRate)},
		{"adapt-damping", strconv.FormatBool(c.adaptDamping)},
		{"alpha", of(c.alpha)},
		{"period", oi(c.period)},
		{"whiten-eps", of(c.whitenEps)},
		{"max-params", oi(c.maxParams)},
	}
}

// checkpoint is the content of a checkpoint directory.
type checkpoint struct {
	generation int
	updates    int
	trained    time.Duration
	flags      []runFlag
	files      map[string][]byte // by the names of stateFiles
}

// checkCheckpointFlags validates -checkpoint, -checkpoint-every and
// -resume before any data is loaded; with -resume it reads and verifies
// the checkpoint.
func (c config) checkCheckpointFlags() error {
	if c.checkpoint == "" {
		switch {
		case c.resume:
			return errors.New("-resume needs -checkpoint DIR, the checkpoint to resume")
		case c.checkpointEverySet:
			return errors.New("-checkpoint-every needs -checkpoint DIR")
		}
		return nil
	}
	if c.checkpointEvery < 1 {
		return fmt.Errorf("-checkpoint-every %d: want ≥ 1", c.checkpointEvery)
	}
	if c.figure != "" {
		return errors.New("-checkpoint cannot be combined with -figure")
	}
	if c.resume {
		_, err := readCheckpoint(c.checkpoint, c.runFlags())
		return err
	}
	if fi, err := os.Stat(c.checkpoint); err == nil && !fi.IsDir() {
		return fmt.Errorf("-checkpoint %s: not a directory", c.checkpoint)
	}
	if _, err := os.Lstat(filepath.Join(c.checkpoint, manifestName)); err == nil {
		return fmt.Errorf("-checkpoint %s already holds a checkpoint; add -resume to continue it, or choose another -checkpoint", c.checkpoint)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("-checkpoint %s: %w", c.checkpoint, err)
	}
	return nil
}

// readCheckpoint reads and verifies the checkpoint in dir, refusing one
// whose flags differ from flags.
func readCheckpoint(dir string, flags []runFlag) (*checkpoint, error) {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("-checkpoint %s: %w: %s", dir, errCorrupt, fmt.Sprintf(format, args...))
	}
	data, err := os.ReadFile(filepath.Join(dir, manifestName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("-checkpoint %s: no checkpoint to resume (%s is missing)", dir, filepath.Join(dir, manifestName))
	}
	if err != nil {
		return nil, fmt.Errorf("-checkpoint %s: %w", dir, err)
	}
	body, sumLine, ok := cutLastLine(data)
	if !ok || sumLine != "sha256 "+hexSum(body) {
		return nil, corrupt("%s does not match its checksum", manifestName)
	}
	ck := &checkpoint{files: make(map[string][]byte)}
	type fileSum struct {
		size int
		sum  string
	}
	sums := make(map[string]fileSum)
	sc := bufio.NewScanner(bytes.NewReader(body))
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		bad := func() error { return corrupt("%s line %d: %q", manifestName, line, sc.Text()) }
		if line == 1 {
			if len(f) != 2 || f[0] != manifestMagic || f[1] != strconv.Itoa(manifestVersion) {
				return nil, bad()
			}
			continue
		}
		if len(f) < 2 {
			return nil, bad()
		}
		var err error
		switch f[0] {
		case "generation":
			ck.generation, err = strconv.Atoi(f[1])
		case "updates":
			ck.updates, err = strconv.Atoi(f[1])
		case "training-ns":
			var ns int64
			ns, err = strconv.ParseInt(f[1], 10, 64)
			ck.trained = time.Duration(ns)
		case "flag":
			// flag NAME "VALUE", the value quoted, perhaps with spaces.
			name, q, _ := strings.Cut(strings.TrimPrefix(sc.Text(), "flag "), " ")
			var v string
			v, err = strconv.Unquote(q)
			ck.flags = append(ck.flags, runFlag{name, v})
		case "file":
			if len(f) != 4 {
				return nil, bad()
			}
			var n int
			n, err = strconv.Atoi(f[2])
			sums[f[1]] = fileSum{n, f[3]}
		default:
			return nil, bad()
		}
		if err != nil || len(f) != 2 && f[0] != "flag" && f[0] != "file" {
			return nil, bad()
		}
	}
	if ck.generation < 1 || ck.updates < 0 || ck.trained < 0 {
		return nil, corrupt("%s: generation %d, %d updates, %v of training", manifestName, ck.generation, ck.updates, ck.trained)
	}
	// The flags, in the order of this version's runFlags.
	have := make(map[string]string, len(ck.flags))
	for _, f := range ck.flags {
		have[f.name] = f.value
	}
	show := func(v string) string {
		if v == "" {
			return "unset (the method's default)"
		}
		return v
	}
	for _, f := range flags {
		v, ok := have[f.name]
		if !ok {
			return nil, fmt.Errorf("-resume: the checkpoint in %s does not record -%s", dir, f.name)
		}
		if v != f.value {
			return nil, fmt.Errorf("-resume: -%s is %s here, but the checkpoint in %s was made with -%s %s; resume with the same -%s",
				f.name, show(f.value), dir, f.name, show(v), f.name)
		}
	}
	gen := filepath.Join(dir, generationDir(ck.generation))
	for _, name := range stateFiles {
		s, ok := sums[name]
		if !ok {
			return nil, corrupt("%s names no %s", manifestName, name)
		}
		path := filepath.Join(gen, name)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, corrupt("%v", err)
		}
		if len(b) != s.size || hexSum(b) != s.sum {
			return nil, corrupt("%s does not match its size and SHA-256 in the manifest", path)
		}
		ck.files[name] = b
	}
	return ck, nil
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

// runState is what a checkpoint saves and restores: the network, the
// optimizer, the minibatch iterator and the random source.
type runState struct {
	net     *nn.Network
	opt     optimizer
	batches *datasets.Batches
	src     *rand.PCG
}

// restore sets s from ck.
func (s runState) restore(dir string, ck *checkpoint) error {
	fail := func(name string, err error, corrupt bool) error {
		path := filepath.Join(dir, generationDir(ck.generation), name)
		if corrupt {
			return fmt.Errorf("-checkpoint %s: %w: %s: %w", dir, errCorrupt, path, err)
		}
		return fmt.Errorf("-checkpoint %s: %s: %w", dir, path, err)
	}
	if err := s.net.Load(bytes.NewReader(ck.files["network.nn"])); err != nil {
		return fail("network.nn", err, errors.Is(err, nn.ErrFormat))
	}
	u, ok := s.opt.(encoding.BinaryUnmarshaler)
	if !ok {
		return fmt.Errorf("-checkpoint: the optimizer %T cannot be restored", s.opt)
	}
	if err := u.UnmarshalBinary(ck.files["optimizer.bin"]); err != nil {
		return fail("optimizer.bin", err, errors.Is(err, optim.ErrCorruptCheckpoint))
	}
	if err := s.batches.UnmarshalBinary(ck.files["batches.bin"]); err != nil {
		return fail("batches.bin", err, errors.Is(err, optim.ErrCorruptCheckpoint))
	}
	if err := s.src.UnmarshalBinary(ck.files["rng.bin"]); err != nil {
		return fail("rng.bin", err, true)
	}
	return nil
}

// checkpointer writes the checkpoints of a run into dir.
type checkpointer struct {
	dir        string
	flags      []runFlag
	generation int // of the last checkpoint written or resumed, 0 for none
	savedAt    int // updates of that checkpoint, -1 for none
}

// save writes the checkpoint of s after the given updates and training
// time, as described at the top of this file.
func (cp *checkpointer) save(s runState, updates int, trained time.Duration) error {
	if err := cp.write(s, updates, trained); err != nil {
		return fmt.Errorf("-checkpoint %s: writing the checkpoint of update %d: %w", cp.dir, updates, err)
	}
	return nil
}

func (cp *checkpointer) write(s runState, updates int, trained time.Duration) (err error) {
	var files [4][]byte
	var net bytes.Buffer
	if err := s.net.Save(&net); err != nil {
		return err
	}
	files[0] = net.Bytes()
	m, ok := s.opt.(encoding.BinaryMarshaler)
	if !ok {
		return fmt.Errorf("the optimizer %T cannot be saved", s.opt)
	}
	if files[1], err = m.MarshalBinary(); err != nil {
		return err
	}
	if files[2], err = s.batches.MarshalBinary(); err != nil {
		return err
	}
	if files[3], err = s.src.MarshalBinary(); err != nil {
		return err
	}
	if err := os.MkdirAll(cp.dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(cp.dir, ".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	for i, name := range stateFiles {
		if err := writeSynced(filepath.Join(tmp, name), files[i]); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp's is 0700
		return err
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	gen := cp.generation + 1
	genPath := filepath.Join(cp.dir, generationDir(gen))
	// A leftover of a save killed before its manifest: not in force.
	if err := os.RemoveAll(genPath); err != nil {
		return err
	}
	if err := os.Rename(tmp, genPath); err != nil {
		return err
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %d\n", manifestMagic, manifestVersion)
	fmt.Fprintf(&b, "generation %d\nupdates %d\ntraining-ns %d\n", gen, updates, trained.Nanoseconds())
	for _, f := range cp.flags {
		fmt.Fprintf(&b, "flag %s %s\n", f.name, strconv.Quote(f.value))
	}
	for i, name := range stateFiles {
		fmt.Fprintf(&b, "file %s %d %s\n", name, len(files[i]), hexSum(files[i]))
	}
	fmt.Fprintf(&b, "sha256 %s\n", hexSum(b.Bytes()))
	mf, err := os.CreateTemp(cp.dir, ".manifest.tmp-")
	if err != nil {
		return err
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
		err = os.Rename(mf.Name(), filepath.Join(cp.dir, manifestName))
	}
	if err != nil {
		os.Remove(mf.Name())
		return err
	}
	if err := syncDir(cp.dir); err != nil {
		return err
	}
	cp.generation, cp.savedAt = gen, updates

	// The new checkpoint is in force: remove the others and leftovers.
	entries, err := os.ReadDir(cp.dir)
	if err != nil {
		return nil
	}
	keep := generationDir(gen)
	for _, e := range entries {
		n := e.Name()
		if n != keep && (strings.HasPrefix(n, ".tmp-") || strings.HasPrefix(n, ".manifest.tmp-") ||
			len(n) == len(keep) && n[0] == 'g' && isDigits(n[1:])) {
			os.RemoveAll(filepath.Join(cp.dir, n))
		}
	}
	return nil
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
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
