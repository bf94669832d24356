package census

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func lease(counts string, renewed time.Time, seconds int32) *coordinationv1.Lease {
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "osm-xds-a", Namespace: "osm-system"}}
	if counts != "" {
		l.Annotations = map[string]string{CountsAnnotation: counts}
	}
	if !renewed.IsZero() {
		l.Spec.RenewTime = ptr.To(metav1.NewMicroTime(renewed))
		l.Spec.LeaseDurationSeconds = ptr.To(seconds)
	}
	return l
}

func TestDecode(t *testing.T) {
	r, err := Decode(lease(`{"shop":3,"books":1}`, time.Time{}, 0))
	if c := r.Counts; err != nil || c["shop"] != 3 || c["books"] != 1 || len(r.Failing) != 0 {
		t.Errorf("Decode = %v, %v", r, err)
	}
	if r, err := Decode(lease("", time.Time{}, 0)); err != nil || len(r.Counts) != 0 || len(r.Failing) != 0 {
		t.Errorf("a Lease without counts: %v, %v", r, err)
	}
	_, err = Decode(lease(`{"shop":"three"}`, time.Time{}, 0))
	if err == nil || !strings.Contains(err.Error(), "osm-system/osm-xds-a") || !strings.Contains(err.Error(), CountsAnnotation) {
		t.Errorf("bad counts: error %v should name the Lease and the annotation", err)
	}

	l := lease(`{}`, time.Time{}, 0)
	l.Annotations[FailingAnnotation] = `{"shop":{"groups":2,"errors":{"sidecar/shop/store":"bad key"}}}`
	r, err = Decode(l)
	if f := r.Failing["shop"]; err != nil || f.Groups != 2 || f.Errors["sidecar/shop/store"] != "bad key" {
		t.Errorf("Decode of failing groups = %+v, %v", r.Failing, err)
	}
	l.Annotations[FailingAnnotation] = `["shop"]`
	if _, err := Decode(l); err == nil || !strings.Contains(err.Error(), FailingAnnotation) {
		t.Errorf("bad failing groups: error %v should name the annotation", err)
	}
}

func TestFailing(t *testing.T) {
	f := Failing{}
	f.Fail("shop", "sidecar/shop/store", errors.New("bad key"))
	f.Fail("shop", "sidecar/shop/store", errors.New("worse key")) // the same group again
	f.Fail("shop", "sidecar/shop/buyer", errors.New("bad key"))
	if n := f["shop"]; n.Groups != 2 || n.Errors["sidecar/shop/store"] != "worse key" {
		t.Fatalf("Fail: %+v", f)
	}

	// Two replicas failing the same groups report them once.
	merged := Failing{}
	merged.Merge(f)
	merged.Merge(f)
	merged.Merge(Failing{"books": {Groups: 1, Errors: map[string]string{"sidecar/books/shelf": "x"}}})
	if merged["shop"].Groups != 2 || len(merged["shop"].Errors) != 2 || merged["books"].Groups != 1 {
		t.Errorf("Merge: %+v", merged)
	}

	// However many groups fail, and however long their errors, a Lease
	// carries a bounded annotation that still counts them all.
	many := Failing{}
	long := errors.New(strings.Repeat("é", 2000))
	for i := range 10000 {
		many.Fail("shop", fmt.Sprintf("sidecar/shop/sa-%05d", i), long)
	}
	b := many.bounded()
	raw, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > MaxErrors*(MaxErrorBytes+64)+64 {
		t.Errorf("the annotation of 10,000 failing groups is %d bytes", len(raw))
	}
	if b["shop"].Groups != 10000 || len(b["shop"].Errors) != MaxErrors {
		t.Errorf("bounded keeps %d groups and %d errors, want 10000 and %d", b["shop"].Groups, len(b["shop"].Errors), MaxErrors)
	}
	for g, e := range b["shop"].Errors {
		if len(e) > MaxErrorBytes || !utf8.ValidString(e) || !strings.HasSuffix(e, "…") {
			t.Errorf("%s: error of %d bytes, valid UTF-8 %v", g, len(e), utf8.ValidString(e))
		}
	}
	if _, ok := b["shop"].Errors["sidecar/shop/sa-00000"]; !ok {
		t.Errorf("bounded keeps the first groups by name: %v", slices.Collect(maps.Keys(b["shop"].Errors)))
	}
}

func TestExpiry(t *testing.T) {
	now := time.Now()
	if e := Expiry(lease("", now, 30)); !e.Equal(now.Add(30 * time.Second)) {
		t.Errorf("Expiry = %v", e)
	}
	if e := Expiry(lease("", time.Time{}, 0)); !e.IsZero() {
		t.Errorf("a Lease never renewed expires at %v, want the zero time", e)
	}
}

func TestTotal(t *testing.T) {
	c := Counts{"a": 1}
	c.Add(Counts{"a": 2, "b": 5, "c": 7})
	if got := c.Total(map[string]bool{"a": true, "b": true}); got != 8 {
		t.Errorf("Total over a, b = %d, want 8", got)
	}
	if got := c.Total(nil); got != 15 {
		t.Errorf("Total = %d, want 15", got)
	}
}

// A Lease's connected VMs decode with the Lease's holder as their replica;
// a proxy two replicas report (it moved, its old stream not closed yet) is
// the one that connected last.
func TestConnectedVMs(t *testing.T) {
	early, late := metav1.NewTime(time.Unix(1000, 0).UTC()), metav1.NewTime(time.Unix(2000, 0).UTC())
	lease := func(replica string, vms VMs) *coordinationv1.Lease {
		raw, err := json.Marshal(vms)
		if err != nil {
			t.Fatal(err)
		}
		return &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: LeasePrefix + replica, Annotations: map[string]string{VMsAnnotation: string(raw)}},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(replica)},
		}
	}
	out := VMs{}
	for _, l := range []*coordinationv1.Lease{
		lease("a", VMs{VMKey("shop", "vm-1"): {Version: "envoy/1", Since: late}, VMKey("shop", "vm-2"): {Since: early}}),
		lease("b", VMs{VMKey("shop", "vm-1"): {Version: "envoy/0", Since: early}}),
	} {
		r, err := Decode(l)
		if err != nil {
			t.Fatal(err)
		}
		out.merge(r.VMs, *l.Spec.HolderIdentity)
	}
	if got := out[VMKey("shop", "vm-1")]; got.Replica != "a" || got.Version != "envoy/1" || !got.Since.Equal(&late) {
		t.Errorf("vm-1: %+v, want replica a's later connection", got)
	}
	if got := out[VMKey("shop", "vm-2")]; got.Replica != "a" || len(out) != 2 {
		t.Errorf("VMs %+v", out)
	}
}
