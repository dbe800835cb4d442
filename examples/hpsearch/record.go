package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/secondorder/secondorder"
)

// defaultOut is the default -out: a directory of its own, outside the
// committed docs/, ignored by git. The committed docs/hpsearch is written
// only when named with -out.
const defaultOut = "hpsearch-out"

// historiesDir is the directory under -out holding the run's settings
// (run.json) and the history of every search as it runs
// (<method>-<search>.jsonl, JSON lines of hpsearch.JSONRecorder): what
// -resume continues from.
const historiesDir = "histories"

// runSettings are the settings that decide the results of a run, recorded in
// histories/run.json; -resume refuses to continue a run with other ones.
type runSettings struct {
	Searches    int    `json:"searches"`
	Experiments int    `json:"experiments"`
	Seed        uint64 `json:"seed"`
	Methods     string `json:"methods"`
	Pool        int    `json:"pool"`
	Train       int    `json:"train"`
	Eval        int    `json:"eval"`
	Hidden      string `json:"hidden"`
	Updates     int    `json:"updates"`
	Batch       int    `json:"batch"`
	LR          string `json:"lr"`
	Alpha       string `json:"alpha"`
	Backend     string `json:"backend"` // matrix products round differently
}

func settingsOf(c config) runSettings {
	return runSettings{
		Searches: c.searches, Experiments: c.experiments, Seed: c.seed, Methods: c.methods,
		Pool: c.pool, Train: c.train, Eval: c.eval, Hidden: c.hidden, Updates: c.updates, Batch: c.batch,
		LR: c.lr, Alpha: c.alpha, Backend: secondorder.Backend(),
	}
}

// diff names the settings of b that differ from a, as flags.
func (a runSettings) diff(b runSettings) []string {
	var d []string
	add := func(name string, x, y any) {
		if x != y {
			d = append(d, fmt.Sprintf("%s %v (recorded %v)", name, y, x))
		}
	}
	add("-searches", a.Searches, b.Searches)
	add("-experiments", a.Experiments, b.Experiments)
	add("-seed", a.Seed, b.Seed)
	add("-methods", a.Methods, b.Methods)
	add("-pool", a.Pool, b.Pool)
	add("-train", a.Train, b.Train)
	add("-eval", a.Eval, b.Eval)
	add("-hidden", a.Hidden, b.Hidden)
	add("-updates", a.Updates, b.Updates)
	add("-batch", a.Batch, b.Batch)
	add("-lr", a.LR, b.LR)
	add("-alpha", a.Alpha, b.Alpha)
	add("backend", a.Backend, b.Backend)
	return d
}

// historyPath returns the history file of search s (0-based) of a method.
func historyPath(out, method string, s int) string {
	return filepath.Join(out, historiesDir, fmt.Sprintf("%s-%03d.jsonl", method, s+1))
}

// prepareOut checks and prepares the output directory of a run before
// anything runs:
//
//   - a missing or empty directory is created and the run's settings are
//     recorded in it;
//   - a directory holding anything is refused, unless -resume (continue the
//     run recorded there, with the same settings) or -overwrite (delete its
//     histories and start a new run; the other outputs are replaced at the
//     end) is given.
func prepareOut(c config) error {
	if c.resume && c.overwrite {
		return errors.New("-resume and -overwrite exclude each other")
	}
	if c.out == "" {
		if c.resume {
			return errors.New("-resume needs -out")
		}
		return nil
	}
	runFile := filepath.Join(c.out, historiesDir, "run.json")
	entries, err := os.ReadDir(c.out)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("-out: %w", err)
	case c.resume:
		data, err := os.ReadFile(runFile)
		if err != nil {
			return fmt.Errorf("-resume: %s holds no recorded run (%v)", c.out, err)
		}
		var rec runSettings
		if err := json.Unmarshal(data, &rec); err != nil {
			return fmt.Errorf("-resume: %s: %v", runFile, err)
		}
		if d := rec.diff(settingsOf(c)); len(d) > 0 {
			return fmt.Errorf("-resume: the run in %s has other settings: %s", c.out, strings.Join(d, ", "))
		}
		return nil
	case len(entries) > 0 && !c.overwrite:
		return fmt.Errorf("-out %s already holds output; give -resume to continue the run recorded there or -overwrite to replace it", c.out)
	case len(entries) > 0:
		if err := os.RemoveAll(filepath.Join(c.out, historiesDir)); err != nil {
			return fmt.Errorf("-overwrite: %w", err)
		}
	}
	if c.resume {
		return fmt.Errorf("-resume: %s holds no recorded run", c.out)
	}
	if err := os.MkdirAll(filepath.Join(c.out, historiesDir), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(settingsOf(c), "", "  ")
	if err != nil {
		return err
	}
	tmp := runFile + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, runFile)
}
