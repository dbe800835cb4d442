// Package training saves and restores an nn training run with package
// checkpoint: the network, the optimizer's state, the minibatch order and
// the random source, so that a resumed run makes the same updates,
// minibatches and random draws as a run that was never interrupted.
//
// A checkpoint of a run holds four state files,
//
//	network.nn      the network, nn's file format (Network.Save)
//	optimizer.bin   the optimizer's MarshalBinary
//	batches.bin     the datasets.Batches' MarshalBinary (order of the
//	                rows, position in the epoch)
//	rng.bin         the MarshalBinary of the run's *rand.PCG, the one
//	                source of every random draw
//
// and the flags that define the run, which Read compares with those of
// the resume. State.Restore sets a run, set up as for a fresh start, from
// the checkpoint.
//
// The errors name the command-line flags -checkpoint and -resume, as the
// examples' commands show them.
package training

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"time"

	"github.com/secondorder/secondorder/checkpoint"
	"github.com/secondorder/secondorder/datasets"
	"github.com/secondorder/secondorder/nn"
	"github.com/secondorder/secondorder/optim"
)

// StateFiles returns the names of the state files of a checkpoint of a
// run.
func StateFiles() []string {
	return []string{"network.nn", "optimizer.bin", "batches.bin", "rng.bin"}
}

// Read reads and verifies the checkpoint in dir, refusing one whose flags
// differ from flags or that lacks one of the state files. unset is shown
// for the value of a flag that is unset (recorded as ""), for example
// "the method's default".
func Read(dir string, flags []checkpoint.Flag, unset string) (*checkpoint.Checkpoint, error) {
	ck, err := checkpoint.Load(dir)
	if errors.Is(err, checkpoint.ErrNotFound) {
		return nil, fmt.Errorf("-checkpoint %s: no checkpoint to resume (%s is missing)", dir, filepath.Join(dir, checkpoint.ManifestName))
	}
	if err != nil {
		return nil, fmt.Errorf("-resume: %w", err)
	}
	var fe *checkpoint.FlagError
	if err := ck.CheckFlags(flags); errors.As(err, &fe) {
		if fe.Missing {
			return nil, fmt.Errorf("-resume: the checkpoint in %s does not record -%s", dir, fe.Name)
		}
		show := func(v string) string {
			if v == "" {
				return "unset (" + unset + ")"
			}
			return v
		}
		return nil, fmt.Errorf("-resume: -%s is %s here, but the checkpoint in %s was made with -%s %s; resume with the same -%s",
			fe.Name, show(fe.Value), dir, fe.Name, show(fe.Saved), fe.Name)
	}
	for _, name := range StateFiles() {
		if _, ok := ck.Files[name]; !ok {
			return nil, fmt.Errorf("-resume: %s: %w: no %s", ck.Dir(dir), checkpoint.ErrCorrupt, name)
		}
	}
	return ck, nil
}

// State is what a checkpoint saves and restores: the network, the
// optimizer, the minibatch iterator and the random source of a run.
// Optimizer must implement encoding.BinaryMarshaler to be saved and
// encoding.BinaryUnmarshaler to be restored, as the optimizers of package
// optim do.
//
// State is not safe for concurrent use.
type State struct {
	Net       *nn.Network
	Optimizer any
	Batches   *datasets.Batches
	Source    *rand.PCG
}

// Files returns the state files of s, by name.
func (s State) Files() (map[string][]byte, error) {
	var net bytes.Buffer
	if err := s.Net.Save(&net); err != nil {
		return nil, err
	}
	m, ok := s.Optimizer.(encoding.BinaryMarshaler)
	if !ok {
		return nil, fmt.Errorf("the optimizer %T cannot be saved", s.Optimizer)
	}
	opt, err := m.MarshalBinary()
	if err != nil {
		return nil, err
	}
	batches, err := s.Batches.MarshalBinary()
	if err != nil {
		return nil, err
	}
	src, err := s.Source.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return map[string][]byte{"network.nn": net.Bytes(), "optimizer.bin": opt, "batches.bin": batches, "rng.bin": src}, nil
}

// Restore sets s from ck, read from dir. Errors about the data of a state
// file wrap checkpoint.ErrCorrupt.
func (s State) Restore(dir string, ck *checkpoint.Checkpoint) error {
	fail := func(name string, err error, corrupt bool) error {
		path := filepath.Join(ck.Dir(dir), name)
		if corrupt {
			return fmt.Errorf("-resume: %s: %w: %w", path, checkpoint.ErrCorrupt, err)
		}
		return fmt.Errorf("-resume: %s: %w", path, err)
	}
	if err := s.Net.Load(bytes.NewReader(ck.Files["network.nn"])); err != nil {
		return fail("network.nn", err, errors.Is(err, nn.ErrFormat))
	}
	u, ok := s.Optimizer.(encoding.BinaryUnmarshaler)
	if !ok {
		return fmt.Errorf("-resume: the optimizer %T cannot be restored", s.Optimizer)
	}
	if err := u.UnmarshalBinary(ck.Files["optimizer.bin"]); err != nil {
		return fail("optimizer.bin", err, errors.Is(err, optim.ErrCorruptCheckpoint))
	}
	if err := s.Batches.UnmarshalBinary(ck.Files["batches.bin"]); err != nil {
		return fail("batches.bin", err, errors.Is(err, optim.ErrCorruptCheckpoint))
	}
	if err := s.Source.UnmarshalBinary(ck.Files["rng.bin"]); err != nil {
		return fail("rng.bin", err, true)
	}
	return nil
}

// Writer writes the checkpoints of a run into Dir, recording Flags.
// SavedAt is the number of updates of the last checkpoint written or
// resumed, -1 for none; Save sets it.
//
// Writer is not safe for concurrent use.
type Writer struct {
	Dir     string
	Flags   []checkpoint.Flag
	SavedAt int
}

// Save writes the checkpoint of s after the given updates and training
// time.
func (w *Writer) Save(s State, updates int, trained time.Duration) error {
	files, err := s.Files()
	if err == nil {
		err = checkpoint.Save(w.Dir, &checkpoint.Checkpoint{Updates: updates, Trained: trained, Flags: w.Flags, Files: files})
	}
	if err != nil {
		return fmt.Errorf("-checkpoint %s: writing the checkpoint of update %d: %w", w.Dir, updates, err)
	}
	w.SavedAt = updates
	return nil
}
