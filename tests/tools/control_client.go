// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// control_client: calls voltrace.v1.Control with containerd's own Go ttrpc
// client, the way Kata's Go runtime would. The message types mirror
// proto/control.proto field by field (gogo protobuf marshals them by
// reflection over the struct tags, as generated code does). Test tooling:
// it checks the C server against the canonical ttrpc implementation.
//
//	control_client -socket PATH status
//	control_client -socket PATH watch SOURCE AGENT DEST
//	control_client -socket PATH unwatch SOURCE [DEST]
//	control_client -socket PATH list
//
// Prints the reply as "field=value" lines; on a refused call prints
// "error code=<Code> message=<msg>" and exits 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/containerd/ttrpc"
	"github.com/gogo/protobuf/proto"
	"google.golang.org/grpc/status"
)

type WatchRequest struct {
	Source string `protobuf:"bytes,1,opt,name=source,proto3"`
	Agent  string `protobuf:"bytes,2,opt,name=agent,proto3"`
	Dest   string `protobuf:"bytes,3,opt,name=dest,proto3"`
}

type WatchResponse struct{}

type UnwatchRequest struct {
	Source string `protobuf:"bytes,1,opt,name=source,proto3"`
	Dest   string `protobuf:"bytes,2,opt,name=dest,proto3"`
}

type UnwatchResponse struct {
	Removed uint32 `protobuf:"varint,1,opt,name=removed,proto3"`
}

type ListRequest struct{}

type WatchInfo struct {
	Source           string `protobuf:"bytes,1,opt,name=source,proto3"`
	Agent            string `protobuf:"bytes,2,opt,name=agent,proto3"`
	Dest             string `protobuf:"bytes,3,opt,name=dest,proto3"`
	Origin           string `protobuf:"bytes,4,opt,name=origin,proto3"`
	State            string `protobuf:"bytes,5,opt,name=state,proto3"`
	LastError        string `protobuf:"bytes,6,opt,name=last_error,proto3"`
	LastSyncUnixNano uint64 `protobuf:"varint,7,opt,name=last_sync_unix_nano,proto3"`
	Syncs            uint64 `protobuf:"varint,8,opt,name=syncs,proto3"`
	FilesCopied      uint64 `protobuf:"varint,9,opt,name=files_copied,proto3"`
	BytesCopied      uint64 `protobuf:"varint,10,opt,name=bytes_copied,proto3"`
}

type ListResponse struct {
	Watches []*WatchInfo `protobuf:"bytes,1,rep,name=watches,proto3"`
}

type StatusRequest struct{}

type StatusResponse struct {
	Version        string `protobuf:"bytes,1,opt,name=version,proto3"`
	Mode           string `protobuf:"bytes,2,opt,name=mode,proto3"`
	Kernel         string `protobuf:"bytes,3,opt,name=kernel,proto3"`
	UptimeNano     uint64 `protobuf:"varint,4,opt,name=uptime_nano,proto3"`
	Watches        uint64 `protobuf:"varint,5,opt,name=watches,proto3"`
	Agents         uint64 `protobuf:"varint,6,opt,name=agents,proto3"`
	Events         uint64 `protobuf:"varint,7,opt,name=events,proto3"`
	EventsDropped  uint64 `protobuf:"varint,8,opt,name=events_dropped,proto3"`
	SyncsOk        uint64 `protobuf:"varint,9,opt,name=syncs_ok,proto3"`
	SyncsError     uint64 `protobuf:"varint,10,opt,name=syncs_error,proto3"`
	BytesCopied    uint64 `protobuf:"varint,11,opt,name=bytes_copied,proto3"`
	FilesCopied    uint64 `protobuf:"varint,12,opt,name=files_copied,proto3"`
	Reconciles     uint64 `protobuf:"varint,13,opt,name=reconciles,proto3"`
	GuestStaleDirs uint64 `protobuf:"varint,14,opt,name=guest_stale_dirs,proto3"`
	ControlSocket  string `protobuf:"bytes,15,opt,name=control_socket,proto3"`
	MetricsAddress string `protobuf:"bytes,16,opt,name=metrics_address,proto3"`
	StateFile      string `protobuf:"bytes,17,opt,name=state_file,proto3"`
}

func (m *WatchRequest) Reset()            { *m = WatchRequest{} }
func (m *WatchResponse) Reset()           { *m = WatchResponse{} }
func (m *UnwatchRequest) Reset()          { *m = UnwatchRequest{} }
func (m *UnwatchResponse) Reset()         { *m = UnwatchResponse{} }
func (m *ListRequest) Reset()             { *m = ListRequest{} }
func (m *WatchInfo) Reset()               { *m = WatchInfo{} }
func (m *ListResponse) Reset()            { *m = ListResponse{} }
func (m *StatusRequest) Reset()           { *m = StatusRequest{} }
func (m *StatusResponse) Reset()          { *m = StatusResponse{} }
func (m *WatchRequest) String() string    { return proto.CompactTextString(m) }
func (m *WatchResponse) String() string   { return proto.CompactTextString(m) }
func (m *UnwatchRequest) String() string  { return proto.CompactTextString(m) }
func (m *UnwatchResponse) String() string { return proto.CompactTextString(m) }
func (m *ListRequest) String() string     { return proto.CompactTextString(m) }
func (m *WatchInfo) String() string       { return proto.CompactTextString(m) }
func (m *ListResponse) String() string    { return proto.CompactTextString(m) }
func (m *StatusRequest) String() string   { return proto.CompactTextString(m) }
func (m *StatusResponse) String() string  { return proto.CompactTextString(m) }
func (*WatchRequest) ProtoMessage()       {}
func (*WatchResponse) ProtoMessage()      {}
func (*UnwatchRequest) ProtoMessage()     {}
func (*UnwatchResponse) ProtoMessage()    {}
func (*ListRequest) ProtoMessage()        {}
func (*WatchInfo) ProtoMessage()          {}
func (*ListResponse) ProtoMessage()       {}
func (*StatusRequest) ProtoMessage()      {}
func (*StatusResponse) ProtoMessage()     {}

const service = "voltrace.v1.Control"

func main() {
	socket := flag.String("socket", "/run/voltrace/control.sock", "control socket")
	flag.Parse()
	args := flag.Args()
	if len(args) < 1 {
		fmt.Fprintln(os.Stderr, "usage: control_client -socket PATH status|list|watch S A D|unwatch S [D]")
		os.Exit(2)
	}
	conn, err := net.DialTimeout("unix", *socket, 5*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		os.Exit(1)
	}
	client := ttrpc.NewClient(conn)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	switch {
	case args[0] == "status":
		var resp StatusResponse
		err = client.Call(ctx, service, "Status", &StatusRequest{}, &resp)
		if err == nil {
			fmt.Printf("version=%s\nmode=%s\nkernel=%s\nuptime_nano=%d\nwatches=%d\nevents=%d\n"+
				"events_dropped=%d\nsyncs_ok=%d\nsyncs_error=%d\ncontrol_socket=%s\n"+
				"metrics_address=%s\nstate_file=%s\n",
				resp.Version, resp.Mode, resp.Kernel, resp.UptimeNano, resp.Watches,
				resp.Events, resp.EventsDropped, resp.SyncsOk, resp.SyncsError,
				resp.ControlSocket, resp.MetricsAddress, resp.StateFile)
		}
	case args[0] == "list":
		var resp ListResponse
		err = client.Call(ctx, service, "List", &ListRequest{}, &resp)
		if err == nil {
			for _, w := range resp.Watches {
				fmt.Printf("watch source=%q agent=%q dest=%q origin=%s state=%s syncs=%d last_error=%q\n",
					w.Source, w.Agent, w.Dest, w.Origin, w.State, w.Syncs, w.LastError)
			}
		}
	case args[0] == "watch" && len(args) == 4:
		err = client.Call(ctx, service, "Watch",
			&WatchRequest{Source: args[1], Agent: args[2], Dest: args[3]}, &WatchResponse{})
		if err == nil {
			fmt.Println("watch ok")
		}
	case args[0] == "unwatch" && (len(args) == 2 || len(args) == 3):
		req := UnwatchRequest{Source: args[1]}
		if len(args) == 3 {
			req.Dest = args[2]
		}
		var resp UnwatchResponse
		err = client.Call(ctx, service, "Unwatch", &req, &resp)
		if err == nil {
			fmt.Printf("removed=%d\n", resp.Removed)
		}
	default:
		fmt.Fprintln(os.Stderr, "bad arguments")
		os.Exit(2)
	}
	if err != nil {
		st, _ := status.FromError(err)
		fmt.Printf("error code=%s message=%s\n", st.Code(), st.Message())
		os.Exit(1)
	}
}
