package testenv

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Invalid is an object the API server must refuse, naming Field in its
// error and saying Message.
type Invalid struct {
	Name string
	// Obj makes the object in namespace ns.
	Obj            func(ns string) client.Object
	Field, Message string
}

// ExpectInvalid creates each case's object in namespace ns through c and
// checks that the API server refuses it as Invalid, naming the field
// (AssertInvalid); an object it accepts is deleted again. A test package
// lists its cases in a type of its own over Invalid (type invalidCase
// testenv.Invalid), whose literals may leave out the field names.
func ExpectInvalid[T ~struct {
	Name           string
	Obj            func(ns string) client.Object
	Field, Message string
}](t *testing.T, c client.Client, ns string, cases []T) {
	t.Helper()
	for _, each := range cases {
		tc := Invalid(each)
		t.Run(tc.Name, func(t *testing.T) {
			obj := tc.Obj(ns)
			err := c.Create(context.Background(), obj)
			if err == nil {
				_ = c.Delete(context.Background(), obj)
				t.Fatalf("the API server accepted an invalid %T", obj)
			}
			AssertInvalid(t, err, tc.Field, tc.Message)
		})
	}
}

// AssertInvalid checks that err is the API server's Invalid error naming
// field and saying message.
func AssertInvalid(t *testing.T, err error, field, message string) {
	t.Helper()
	if !apierrors.IsInvalid(err) {
		t.Fatalf("want an Invalid error, got %v", err)
	}
	if !strings.Contains(err.Error(), field+":") && !strings.Contains(err.Error(), field+" ") {
		t.Errorf("error does not name the field %s: %v", field, err)
	}
	if !strings.Contains(err.Error(), message) {
		t.Errorf("error does not say %q: %v", message, err)
	}
}
