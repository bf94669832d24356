// Package wire holds xDS resources together with their wire encoding, made
// once when a snapshot is published, so that every proxy stream sent the
// resource is sent the same bytes instead of encoding the resource again.
//
// A Message is the resource as far as protobuf reflection goes (proto.Equal,
// protojson, anypb read the resource it holds), but marshalling it returns
// the stored encoding: go-control-plane's caches marshal each resource of
// each response with proto.Marshal, which for a Message costs no encoding
// and, for a resource encoded in one piece, no copy either.
package wire

import (
	"fmt"

	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/runtime/protoiface"
)

// Message is a resource and its deterministic encoding. Neither may change
// once the Message is made: it is shared by snapshots and streams.
type Message struct {
	msg  proto.Message
	name string
	// pieces, joined, are the encoding; one piece is returned as is.
	pieces [][]byte
	size   int
}

// Encode encodes m deterministically, as go-control-plane does.
func Encode(m proto.Message) (*Message, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", m, err)
	}
	return &Message{msg: m, name: cachev3.GetResourceName(m), pieces: [][]byte{b}, size: len(b)}, nil
}

// Spliced is m encoded from rest, the deterministic encoding of m without
// the elements of its repeated message field f, and items, those elements'
// own Messages in order: their encodings are referenced, not copied, so a
// resource made of shared parts (a listener of shared filter chains) costs
// only its own fields. The result is the bytes Encode(m) gives, because a
// deterministic encoding writes the fields in the order of their numbers.
func Spliced(m proto.Message, rest []byte, f protowire.Number, items []*Message) (*Message, error) {
	// Find where field f goes: after every field numbered below it.
	at := 0
	for at < len(rest) {
		num, typ, n := protowire.ConsumeTag(rest[at:])
		if n < 0 {
			return nil, fmt.Errorf("splicing %T: %w", m, protowire.ParseError(n))
		}
		if num > f {
			break
		}
		if num == f {
			return nil, fmt.Errorf("splicing %T: field %d is not empty", m, f)
		}
		v := protowire.ConsumeFieldValue(num, typ, rest[at+n:])
		if v < 0 {
			return nil, fmt.Errorf("splicing %T: %w", m, protowire.ParseError(v))
		}
		at += n + v
	}
	w := &Message{msg: m, name: cachev3.GetResourceName(m), pieces: make([][]byte, 0, 2*len(items)+2)}
	w.add(rest[:at:at])
	for _, it := range items {
		var head []byte
		head = protowire.AppendTag(head, f, protowire.BytesType)
		head = protowire.AppendVarint(head, uint64(it.size))
		w.add(head)
		w.pieces = append(w.pieces, it.pieces...)
		w.size += it.size
	}
	w.add(rest[at:])
	return w, nil
}

func (w *Message) add(b []byte) {
	if len(b) > 0 {
		w.pieces = append(w.pieces, b)
		w.size += len(b)
	}
}

// GetName is the resource's name, as go-control-plane's caches ask it.
func (w *Message) GetName() string { return w.name }

// Size is the length of the encoding.
func (w *Message) Size() int { return w.size }

// Bytes is the encoding. It must not be changed: in one piece, it is the
// shared copy.
func (w *Message) Bytes() []byte {
	if len(w.pieces) == 1 {
		b := w.pieces[0]
		return b[:len(b):len(b)] // an append copies rather than writes into it
	}
	out := make([]byte, 0, w.size)
	for _, p := range w.pieces {
		out = append(out, p...)
	}
	return out
}

// ProtoReflect is the resource's reflection, but for marshalling.
func (w *Message) ProtoReflect() protoreflect.Message {
	return reflected{Message: w.msg.ProtoReflect(), w: w}
}

type reflected struct {
	protoreflect.Message
	w *Message
}

func (r reflected) ProtoMethods() *protoiface.Methods { return &methods }

// methods marshal a Message from its encoding. There is no Size: proto.Size
// then asks Marshal, and proto.Marshal does not hand Marshal a buffer sized
// for a copy. Unmarshal and Merge are left to reflection, into the resource;
// nothing may do either to a Message.
var methods = protoiface.Methods{
	Flags: protoiface.SupportMarshalDeterministic,
	Marshal: func(in protoiface.MarshalInput) (protoiface.MarshalOutput, error) {
		w := in.Message.(reflected).w
		if len(in.Buf) == 0 {
			return protoiface.MarshalOutput{Buf: w.Bytes()}, nil
		}
		out := in.Buf
		for _, p := range w.pieces {
			out = append(out, p...)
		}
		return protoiface.MarshalOutput{Buf: out}, nil
	},
	CheckInitialized: func(in protoiface.CheckInitializedInput) (protoiface.CheckInitializedOutput, error) {
		return protoiface.CheckInitializedOutput{}, proto.CheckInitialized(in.Message.(reflected).w.msg)
	},
}
