package secondorder_test

import (
	"bufio"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestREADMEImportDiagram checks the README's table of imports between the
// module's packages against go list, so that the documented dependency
// graph (optim never imports nn, even indirectly) stays true.
func TestREADMEImportDiagram(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command:", err)
	}
	const module = "github.com/secondorder/secondorder"
	f, err := os.Open("README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pkg, deps, ok := strings.Cut(sc.Text(), "imports:")
		if !ok || strings.Contains(pkg, "`") {
			continue
		}
		pkg = strings.TrimSpace(pkg)
		var list []string
		if !strings.Contains(deps, "gonum only") {
			for _, d := range strings.Split(deps, ",") {
				list = append(list, strings.TrimSpace(d))
			}
		}
		slices.Sort(list)
		want[pkg] = list
	}
	if len(want) == 0 {
		t.Fatal("README.md has no import table (lines \"pkg   imports: a, b\")")
	}
	name := func(path string) string {
		if path == module {
			return "secondorder"
		}
		return strings.TrimPrefix(path, module+"/")
	}
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := name(fields[0])
		if strings.HasPrefix(pkg, "examples/") {
			continue
		}
		var got []string
		for _, imp := range fields[1:] {
			if imp == module || strings.HasPrefix(imp, module+"/") {
				got = append(got, name(imp))
			}
		}
		slices.Sort(got)
		w, ok := want[pkg]
		if !ok {
			t.Errorf("package %s (imports %v) is missing from the README's import table", pkg, got)
			continue
		}
		seen[pkg] = true
		if !slices.Equal(got, w) {
			t.Errorf("%s imports %v, the README says %v", pkg, got, w)
		}
	}
	for pkg := range want {
		if !seen[pkg] {
			t.Errorf("the README's import table lists %s, which go list does not know", pkg)
		}
	}
	deps, err := exec.Command("go", "list", "-deps", "./optim").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	if strings.Contains(string(deps), module+"/nn\n") {
		t.Errorf("optim depends on nn:\n%s", deps)
	}
}
