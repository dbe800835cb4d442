package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secondorder/secondorder/checkpoint"
	"github.com/secondorder/secondorder/checkpoint/training"
	"github.com/secondorder/secondorder/datasets"
	"github.com/secondorder/secondorder/nn"
)

// smallMNIST returns the first 700 training and 500 test images of MNIST:
// with -batch 50, epochs of 14 updates, so that 40 updates cross epochs
// (and draw new orders) before and after update 20.
func smallMNIST(t *testing.T) *datasets.MNIST {
	t.Helper()
	needMNIST(t)
	full, err := mnist()
	if err != nil {
		t.Fatal(err)
	}
	data := *full
	data.TrainImages, data.TestImages = subset(full.TrainImages, 700), subset(full.TestImages, 500)
	return &data
}

// trainArgs runs the command line args on data as run would, after its
// checks.
func trainArgs(t *testing.T, data *datasets.MNIST, args ...string) error {
	t.Helper()
	c := parse(t, args...)
	if err := c.check(); err != nil {
		return err
	}
	_, err := train(c, data, io.Discard, c.out)
	return err
}

// logRows returns the rows of dir/log.csv without the seconds column.
func logRows(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "log.csv"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, row := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Split(row, ",")
		rows = append(rows, strings.Join(append(f[:1:1], f[2:]...), ","))
	}
	return strings.Join(rows, "\n")
}

// TestCheckpointResumeExact checks, for each method, that 20 updates, a
// checkpoint and a resumed run to 40 updates log the rows of 40 updates
// without interruption and end with the same network, optimizer state,
// minibatch position and random source, bit for bit.
func TestCheckpointResumeExact(t *testing.T) {
	data := smallMNIST(t)
	for _, method := range []string{"sgd", "adam", "centered", "acp", "kfac", "nnn", "adam -norm bn"} {
		t.Run(method, func(t *testing.T) {
			opt, more, _ := strings.Cut(method, " ")
			tmp := t.TempDir()
			dir := func(name string) string { return filepath.Join(tmp, name) }
			base := []string{"-opt", opt, "-arch", "784-16-784", "-batch", "50", "-log-updates", "10", "-eval", "200", "-seed", "7"}
			base = append(base, strings.Fields(more)...)
			with := func(args ...string) []string { return append(append([]string{}, base...), args...) }

			if err := trainArgs(t, data, with("-updates", "40", "-out", dir("full"), "-checkpoint", dir("ckfull"))...); err != nil {
				t.Fatal(err)
			}
			// Checkpoints every 7 updates: the resume starts from the
			// one at the end, update 20, after others were replaced.
			if err := trainArgs(t, data, with("-updates", "20", "-out", dir("split"), "-checkpoint", dir("cksplit"), "-checkpoint-every", "7")...); err != nil {
				t.Fatal(err)
			}
			half, err := readCheckpoint(dir("cksplit"), parse(t, base...).runFlags())
			if err != nil {
				t.Fatal(err)
			}
			if half.Updates != 20 {
				t.Fatalf("checkpoint at update %d, want 20", half.Updates)
			}
			if err := trainArgs(t, data, with("-updates", "40", "-out", dir("split"), "-checkpoint", dir("cksplit"), "-resume")...); err != nil {
				t.Fatal(err)
			}

			full, split := logRows(t, dir("full")), logRows(t, dir("split"))
			if full != split {
				t.Errorf("logs without seconds differ:\n%s\n--- resumed:\n%s", full, split)
			}
			if n := strings.Count(split, "\n"); n != 5 {
				t.Errorf("resumed log has %d rows, want header and updates 0, 10, 20, 30, 40:\n%s", n, split)
			}
			flags := parse(t, base...).runFlags()
			a, err := readCheckpoint(dir("ckfull"), flags)
			if err != nil {
				t.Fatal(err)
			}
			b, err := readCheckpoint(dir("cksplit"), flags)
			if err != nil {
				t.Fatal(err)
			}
			if a.Updates != 40 || b.Updates != 40 {
				t.Errorf("checkpoints at updates %d and %d, want 40", a.Updates, b.Updates)
			}
			for _, name := range training.StateFiles() {
				if !bytes.Equal(a.Files[name], b.Files[name]) {
					t.Errorf("%s after 40 updates differs from that after 20 + 20", name)
				}
			}
			na, err := nn.Read(bytes.NewReader(a.Files["network.nn"]))
			if err != nil {
				t.Fatal(err)
			}
			nb, err := nn.Read(bytes.NewReader(b.Files["network.nn"]))
			if err != nil {
				t.Fatal(err)
			}
			pa, pb := na.Params(nil), nb.Params(nil)
			for i := range pa {
				if math.Float64bits(pa[i]) != math.Float64bits(pb[i]) {
					t.Fatalf("parameter %d: %v uninterrupted, %v resumed", i, pa[i], pb[i])
				}
			}
			entries, _ := os.ReadDir(dir("cksplit"))
			if len(entries) != 2 {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("checkpoint directory holds %v, want the manifest and one generation", names)
			}

			if method != "sgd" {
				return
			}
			// Refusals, before anything is printed: other flags, a
			// corrupt file, an existing checkpoint without -resume.
			for _, tc := range []struct {
				args []string
				want string
			}{
				{[]string{"-opt", "adam"}, "-opt"},
				{[]string{"-lr", "0.02"}, "-lr is 0.02 here, but the checkpoint"},
				{[]string{"-seed", "8"}, "-seed is 8 here"},
				{[]string{"-batch", "100"}, "-batch"},
			} {
				c := parse(t, append(with("-updates", "60", "-checkpoint", dir("cksplit"), "-resume"), tc.args...)...)
				var out bytes.Buffer
				_, err := run(c, &out)
				if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
					t.Errorf("resume with %v: error %v, want one line containing %q", tc.args, err, tc.want)
				}
				if out.Len() > 0 {
					t.Errorf("resume with %v printed %q", tc.args, out.String())
				}
			}
			c := parse(t, with("-updates", "60", "-checkpoint", dir("cksplit"))...)
			if _, err := run(c, io.Discard); err == nil || !strings.Contains(err.Error(), "already holds a checkpoint") {
				t.Errorf("-checkpoint into an existing checkpoint without -resume: error %v", err)
			}

			// A flipped byte of the optimizer's state: the manifest's
			// checksum refuses it before MNIST loads.
			optFile := filepath.Join(b.Dir(dir("cksplit")), "optimizer.bin")
			orig := b.Files["optimizer.bin"]
			bad := append([]byte{}, orig...)
			bad[len(bad)/2] ^= 0x10
			if err := os.WriteFile(optFile, bad, 0o644); err != nil {
				t.Fatal(err)
			}
			c = parse(t, with("-updates", "60", "-checkpoint", dir("cksplit"), "-resume")...)
			_, err = run(c, io.Discard)
			if !errors.Is(err, checkpoint.ErrCorrupt) || !strings.Contains(err.Error(), "optimizer.bin") {
				t.Errorf("flipped byte of optimizer.bin: error %v, want a corrupt checkpoint naming optimizer.bin", err)
			}
			// With the manifest rewritten to match, the optimizer's own
			// check refuses it.
			rewriteManifest(t, dir("cksplit"), "optimizer.bin", bad)
			err = trainArgs(t, data, with("-updates", "60", "-checkpoint", dir("cksplit"), "-resume")...)
			if !errors.Is(err, checkpoint.ErrCorrupt) || !strings.Contains(err.Error(), "optimizer.bin") || !strings.Contains(err.Error(), "optim: SGD") {
				t.Errorf("flipped byte of optimizer.bin under a matching manifest: error %v, want a corrupt checkpoint from optim", err)
			}
		})
	}
}

// rewriteManifest replaces the file name of the checkpoint in dir by data
// and rewrites the manifest's size and checksums to match.
func rewriteManifest(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	path := filepath.Join(dir, checkpoint.ManifestName)
	m, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, line := range strings.Split(strings.TrimSuffix(string(m), "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "file "+name+" "):
			line = fmt.Sprintf("file %s %d %s", name, len(data), hexSum(data))
		case strings.HasPrefix(line, "sha256 "):
			continue
		}
		b.WriteString(line + "\n")
	}
	fmt.Fprintf(&b, "sha256 %s\n", hexSum(b.Bytes()))
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// hexSum returns the SHA-256 of b in hex, as the manifest writes it.
func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestCheckpointRefusesBadFlags checks the refusals that need no
// checkpoint: -resume without -checkpoint or without a checkpoint in it, a
// corrupt manifest, and bad -checkpoint-every, all before MNIST loads.
func TestCheckpointRefusesBadFlags(t *testing.T) {
	empty := t.TempDir()
	garbled := t.TempDir()
	if err := os.WriteFile(filepath.Join(garbled, checkpoint.ManifestName), []byte("autoencoder-checkpoint 1\nupdates 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"-arch", "784-16-784", "-updates", "40"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-resume"}, "-resume needs -checkpoint DIR"},
		{[]string{"-checkpoint-every", "10"}, "-checkpoint-every needs -checkpoint"},
		{[]string{"-checkpoint", empty, "-checkpoint-every", "0"}, "-checkpoint-every 0"},
		{[]string{"-checkpoint", empty, "-resume"}, "no checkpoint to resume"},
		{[]string{"-checkpoint", filepath.Join(empty, "none"), "-resume"}, "no checkpoint to resume"},
		{[]string{"-checkpoint", garbled, "-resume"}, "corrupt checkpoint: manifest does not match its checksum"},
		{[]string{"-checkpoint", empty, "-figure", "3.1", "-out", empty}, "-checkpoint cannot be combined with -figure"},
	} {
		c := parse(t, append(append([]string{}, base...), tc.args...)...)
		var out bytes.Buffer
		_, err := run(c, &out)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: error %v, want one line containing %q", tc.args, err, tc.want)
		}
		if out.Len() > 0 {
			t.Errorf("%v: printed %q", tc.args, out.String())
		}
	}

	// The command exits with status 2 and one line, as for other bad
	// settings.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "AUTOENCODER_MAIN=1", "AUTOENCODER_ARGS=-arch 784-16-784 -updates 1 -resume -checkpoint "+empty)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("exit: %v, want status 2; stderr:\n%s", err, stderr.String())
	}
	if msg := stderr.String(); !strings.HasPrefix(msg, "autoencoder: -checkpoint ") || strings.Count(msg, "\n") != 1 || stdout.Len() > 0 {
		t.Errorf("stdout %q, stderr %q: want nothing, and one line", stdout.String(), msg)
	}
}
