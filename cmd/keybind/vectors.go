package main

import (
	"errors"
	"fmt"

	"github.com/keybind/keybind/testvectors"
)

func runVectors(e *env, args []string) int {
	return subcommands(e, "vectors", `Work with keybind test vectors (format: VECTORS.md, version 1).`, []*command{
		{name: "run", summary: "run every vector of a directory or manifest", run: runVectorsRun},
	}, args)
}

func runVectorsRun(e *env, args []string) int {
	fs := newFlags(e, "keybind vectors run DIR|MANIFEST...", `
Run test vectors and print one line per vector ("ok", or "FAIL" with what
was expected and what came), then "vectors: N passed, N failed".

DIR is a directory holding manifest.json, or a directory whose
subdirectories hold manifests (every manifest below it runs). Several paths
may be given.

Exit status: 0 when every vector passed, 1 when any failed, 2 when a
manifest (or a field of a vector) is unusable; the message names the field.`)
	if st := parseFlags(e, fs, args); st >= 0 {
		return st
	}
	if fs.NArg() == 0 {
		e.errorf("vectors run: name a directory or manifest")
		return 2
	}
	r := testvectors.Runner{Out: e.stdout}
	var total testvectors.Summary
	unusable := false
	for _, path := range fs.Args() {
		sum, err := r.Run(path)
		total.Passed += sum.Passed
		total.Failed += sum.Failed
		if err != nil {
			unusable = true
			var me *testvectors.ManifestError
			if errors.As(err, &me) {
				e.errorf("unusable manifest: %v", me)
			} else {
				e.errorf("%v", err)
			}
		}
	}
	fmt.Fprintf(e.stdout, "vectors: %d passed, %d failed\n", total.Passed, total.Failed)
	switch {
	case unusable:
		return 2
	case total.Failed > 0:
		return 1
	}
	return 0
}
