package main

import (
	"errors"
	"fmt"
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
// force). This file holds what is the autoencoder's own: the flags that
// define a run (runFlags), recorded in the manifest, and the state files,
//
//	network.nn      the network, nn's file format (Network.Save):
//	                parameters, batch normalisation's γ, β, ε, momentum
//	                and running statistics, whitening U and μ
//	optimizer.bin   the optimizer's MarshalBinary
//	batches.bin     the datasets.Batches' MarshalBinary (order of the
//	                rows, position in the epoch)
//	rng.bin         the MarshalBinary of the run's *rand.PCG, the one
//	                source of every random draw: initialisation, the
//	                nnn whitening sample, minibatch order, K-FAC's
//	                Monte-Carlo targets
//
// restored after the run is set up as for a fresh start (training.State.Restore).
// Loading refuses a resume with other flags, naming the first that
// differs, and a checkpoint that does not match its checksums; the
// optimizer, the Batches and the network check their own data too.

// runFlags returns the flags that define the run, with their values as
// given ("" for a method flag left unset): a resume must give the same
// values.
func (c config) runFlags() []checkpoint.Flag {
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
	return []checkpoint.Flag{
		{Name: "opt", Value: c.opt},
		{Name: "arch", Value: c.arch},
		{Name: "batch", Value: strconv.Itoa(c.batch)},
		{Name: "seed", Value: strconv.FormatUint(c.seed, 10)},
		{Name: "loss", Value: c.loss},
		{Name: "init", Value: c.init},
		{Name: "init-scale", Value: f(c.initScale)},
		{Name: "norm", Value: c.norm},
		{Name: "lr", Value: of(c.lr)},
		{Name: "momentum", Value: of(c.momentum)},
		{Name: "nesterov", Value: strconv.FormatBool(c.nesterov)},
		{Name: "damping", Value: of(c.damping)},
		{Name: "norm-constraint", Value: of(c.trust)},
		{Name: "stats-batch", Value: oi(c.statsBatch)},
		{Name: "stats-period", Value: oi(c.statsPeriod)},
		{Name: "auto-rate", Value: strconv.FormatBool(c.autoRate)},
		{Name: "adapt-damping", Value: strconv.FormatBool(c.adaptDamping)},
		{Name: "alpha", Value: of(c.alpha)},
		{Name: "period", Value: oi(c.period)},
		{Name: "whiten-eps", Value: of(c.whitenEps)},
		{Name: "max-params", Value: oi(c.maxParams)},
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
	if c.figure != "" {
		return errors.New("-checkpoint cannot be combined with -figure")
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
	return training.Read(dir, flags, "the method's default")
}
