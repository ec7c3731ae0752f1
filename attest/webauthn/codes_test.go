package webauthn_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// codesIn returns the values of the attest.Code constants declared in the
// package in dir.
func codesIn(t *testing.T, dir string) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]string{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			spec, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			sel, ok := spec.Type.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "Code" {
				return true
			}
			for i, v := range spec.Values {
				lit, ok := v.(*ast.BasicLit)
				if !ok {
					continue
				}
				s, _ := strconv.Unquote(lit.Value)
				if prev, dup := codes[s]; dup {
					t.Errorf("code %s declared as %s and %s", s, prev, spec.Names[i].Name)
				}
				codes[s] = spec.Names[i].Name
			}
			return true
		})
	}
	return codes
}

// TestCodes checks the codes of package webauthn together with those of
// the verifiers it reports (tpm, androidkey, appattest, and attest's CBOR
// codes): stable families, and no code a prefix of another, since vectors
// name an expected failure by prefix. The same code in two packages is one
// code.
func TestCodes(t *testing.T) {
	all := map[string]string{}
	for _, dir := range []string{".", filepath.Join("..", "tpm"), filepath.Join("..", "androidkey"), filepath.Join("..", "appattest"), ".."} {
		for c, name := range codesIn(t, dir) {
			all[c] = name
		}
	}
	if len(all) < 100 {
		t.Fatalf("only %d codes found", len(all))
	}
	families := map[string]bool{"input": true, "cbor": true, "asn1": true, "chain": true, "tpm": true, "webauthn": true, "policy": true,
		"android": true, "appattest": true, "assert": true}
	for c := range all {
		fam, check, ok := strings.Cut(c, ".")
		if !ok || !families[fam] || check == "" || strings.ToLower(c) != c {
			t.Errorf("code %q (%s) is not family.check in a known family", c, all[c])
		}
		for d := range all {
			if c != d && strings.HasPrefix(d, c) {
				t.Errorf("code %s is a prefix of %s", c, d)
			}
		}
	}
}
