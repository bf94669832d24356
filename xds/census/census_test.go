package census

import (
	"strings"
	"testing"
	"time"

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
	c, err := Decode(lease(`{"shop":3,"books":1}`, time.Time{}, 0))
	if err != nil || c["shop"] != 3 || c["books"] != 1 {
		t.Errorf("Decode = %v, %v", c, err)
	}
	if c, err := Decode(lease("", time.Time{}, 0)); err != nil || len(c) != 0 {
		t.Errorf("a Lease without counts: %v, %v", c, err)
	}
	_, err = Decode(lease(`{"shop":"three"}`, time.Time{}, 0))
	if err == nil || !strings.Contains(err.Error(), "osm-system/osm-xds-a") || !strings.Contains(err.Error(), CountsAnnotation) {
		t.Errorf("bad counts: error %v should name the Lease and the annotation", err)
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
