// Package hpsearch tunes hyperparameters by grid search, random search and
// biased random search, the three procedures of T. George, "Factorized second
// order methods in neural networks", §2.3 (biased random search is its
// algorithm 1; random search is Bergstra & Bengio, JMLR 13, 2012).
//
// A search explores a Space of named hyperparameters, each with a range, a
// linear or logarithmic Scale and possibly integer values. Points are
// compared in normalised coordinates in [0, 1]^d (log10 of the value on a Log
// scale): random sampling is uniform there and the cost models of biased
// search measure distances there. An Objective runs one experiment and
// returns the criterion to minimise:
//
//	space, err := hpsearch.NewSpace(
//		hpsearch.Param{Name: "lr", Min: 1e-4, Max: 1, Scale: hpsearch.Log},
//		hpsearch.Param{Name: "batch", Min: 16, Max: 512, Scale: hpsearch.Log, Integer: true},
//	)
//	...
//	res, err := hpsearch.Search(ctx, space, func(ctx context.Context, p hpsearch.Point) (float64, error) {
//		return train(ctx, p.Get("lr"), p.Int("batch"))
//	}, &hpsearch.Biased{}, &hpsearch.Settings{Budget: 100, Seed: 1})
//	best, value, ok := res.Best()
//
// # Failures
//
// An experiment fails when its objective returns an error, NaN or ±Inf, or
// panics (the panic is recovered in the worker). Failures are kept in the
// history (Trial.Err) and do not stop the search; biased search treats them
// as the worst result seen.
//
// # Concurrency and reproducibility
//
// Search runs Settings.Workers experiments at the same time (default
// runtime.GOMAXPROCS) and stops starting new ones when its context is done.
// Experiment i is proposed with a random source derived from (Settings.Seed,
// i) alone. Grid and Random proposals do not depend on the history, so their
// results depend only on the seed. Biased proposals see the experiments
// finished at proposal time: with W workers, up to W−1 fewer than a
// sequential search, and which ones depends on timing. With Workers = 1 a
// seed gives exactly the same history.
//
// # Recording and resuming
//
// A JSONRecorder writes every finished experiment as a line of JSON.
// ReadHistory reads such a file back; passed as Settings.History, the trials
// are kept and the search runs only the remaining experiments. Because each
// proposal depends only on the seed, its index and the history before it, a
// sequential search interrupted and resumed with the same seed produces the
// same history as an uninterrupted one. Every trial that a search keeps in
// its result, including those finishing after its context is cancelled,
// reaches the recorder. An objective with randomness of its own (an
// initialisation, say) should seed it by TrialIndex(ctx), since a resumed
// search runs only the missing experiments:
//
//	f, err := os.OpenFile("search.jsonl", os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
//	...
//	hist, err := hpsearch.ReadHistory(f, space)
//	...
//	res, err := hpsearch.Search(ctx, space, objective, &hpsearch.Biased{}, &hpsearch.Settings{
//		Budget: 100, Workers: 1, Seed: 1,
//		History: hist, Recorder: hpsearch.NewJSONRecorder(f),
//	})
package hpsearch
