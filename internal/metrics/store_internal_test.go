package metrics

import (
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"testing"

	"github.com/issuer-oauth/issuer/internal/store"
)

// TestEveryOperationInstrumented keeps the decorator complete: every method
// of store.Store but Close has an operation label and a method of its own on
// instrumented in store.go. A method added to store.Store passes through
// uninstrumented (the interface is embedded) until it is added there.
func TestEveryOperationInstrumented(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "store.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string]bool{}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Recv == nil || len(fd.Recv.List) != 1 {
			continue
		}
		if star, ok := fd.Recv.List[0].Type.(*ast.StarExpr); ok {
			if id, ok := star.X.(*ast.Ident); ok && id.Name == "instrumented" {
				declared[fd.Name.Name] = true
			}
		}
	}
	iface := reflect.TypeFor[store.Store]()
	for i := range iface.NumMethod() {
		if name := iface.Method(i).Name; name != "Close" && !declared[name] {
			t.Errorf("store.Store.%s is not instrumented in store.go", name)
		}
	}
	if got, want := len(operations), iface.NumMethod()-1; got != want {
		t.Errorf("%d operation labels for %d store.Store methods (Close aside)", got, want)
	}
}
