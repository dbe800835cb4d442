package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/secondorder/secondorder/checkpoint"
	"github.com/secondorder/secondorder/checkpoint/training"
)

// Checkpoints: -checkpoint DIR writes the state of the run into DIR every
// -checkpoint-every updates and at the end of training; -resume continues
// the run from it, with the same updates, minibatches and random draws as
// a run that was never interrupted.
//
// Package checkpoint writes DIR atomically, with checksums, as a manifest
// and a generation directory of state files (see its documentation for
// the layout and why a killed save leaves the previous checkpoint in
// force). This file holds what is the classifier's own: the flags that
// define a run (runFlags), recorded in the manifest, and the state files,
//
//	network.nn      the network, nn's file format (Network.Save)
//	optimizer.bin   the optimizer's MarshalBinary
//	batches.bin     the datasets.Batches' MarshalBinary (order of the
//	                rows, position in the epoch)
//	rng.bin         the MarshalBinary of the run's *rand.PCG, the one
//	                source of every random draw: initialisation,
//	                minibatch order, K-FAC's Monte-Carlo targets
//
// restored after the run is set up as for a fresh start (training.State.Restore).
// Loading refuses a resume with other flags, naming the first that
// differs, and a checkpoint that does not match its checksums; the
// optimizer, the Batches and the network check their own data too.

// runFlags returns the flags that define the run, with their values as
// given ("" for a method flag left unset): a resume must give the same
// values.
func (c config) runFlags() []checkpoint.Flag {
	of := func(o optional[float64]) string {
		if !o.set {
			return ""
		}
		return strconv.FormatFloat(o.val, 'g', -1, 64)
	}
	return []checkpoint.Flag{
		{Name: "opt", Value: c.opt},
		{Name: "arch", Value: c.arch},
		{Name: "act", Value: c.act},
		{Name: "batch", Value: strconv.Itoa(c.batch)},
		{Name: "seed", Value: strconv.FormatUint(c.seed, 10)},
		{Name: "lr", Value: of(c.lr)},
		{Name: "momentum", Value: of(c.momentum)},
		{Name: "damping", Value: of(c.damping)},
	}
}

// checkCheckpointFlags validates -checkpoint, -checkpoint-every and
// -resume before any data is loaded; with -resume it reads and verifies
// the checkpoint, kept in c.resumed.
func (c *config) checkCheckpointFlags() error {
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
	if c.resume {
		var err error
		c.resumed, err = readCheckpoint(c.checkpoint, c.runFlags())
		return err
	}
	if ok, err := checkpoint.Exists(c.checkpoint); err != nil {
		return fmt.Errorf("-checkpoint: %w", err)
	} else if ok {
		return fmt.Errorf("-checkpoint %s already holds a checkpoint; add -resume to continue it, or choose another -checkpoint", c.checkpoint)
	}
	return nil
}

// readCheckpoint reads and verifies the checkpoint in dir, refusing one
// whose flags differ from flags (see training.Read).
func readCheckpoint(dir string, flags []checkpoint.Flag) (*checkpoint.Checkpoint, error) {
	return training.Read(dir, flags, "the optimizer's zero value")
}

// readLog returns the evaluations logged in the log.csv at path by the run
// that a resumed run continues, for its plot. A missing log has none; rows
// that do not parse (the header, one cut short by a kill) are left out.
func readLog(path string) ([]point, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	var pts []point
	for {
		row, err := r.Read()
		if err == io.EOF {
			return pts, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(row) != 6 {
			continue
		}
		var p point
		var errs [6]error
		p.update, errs[0] = strconv.Atoi(row[0])
		p.seconds, errs[1] = strconv.ParseFloat(row[1], 64)
		p.epoch, errs[2] = strconv.Atoi(row[2])
		p.trainLoss, errs[3] = strconv.ParseFloat(row[3], 64)
		p.testLoss, errs[4] = strconv.ParseFloat(row[4], 64)
		p.testAcc, errs[5] = strconv.ParseFloat(row[5], 64)
		if errors.Join(errs[:]...) == nil {
			pts = append(pts, p)
		}
	}
}

// needsHeader reports whether the log f, opened for appending, is empty;
// when it is not and its last row was cut short, it ends it with a newline.
func needsHeader(f *os.File) (bool, error) {
	b, err := os.ReadFile(f.Name())
	if err != nil || len(b) == 0 {
		return err == nil, err
	}
	if b[len(b)-1] != '\n' {
		_, err = f.Write([]byte("\n"))
	}
	return false, err
}
