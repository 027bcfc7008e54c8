// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// kata-peer: a conformance peer for voltrace's agent client. It serves
// grpc.AgentService/CopyFile with kata-agent's semantics on top of
// containerd's own ttrpc implementation (github.com/containerd/ttrpc), so
// it checks voltrace against the canonical wire protocol, not against
// voltrace's own framing code. Test tooling only.
//
//	kata-peer -socket PATH -root DIR [-hvsock [-port N]] [-delay D]
//	          [-drop-after N] [-error-code C [-error-msg M]] [-junk MODE]
//	          [-ack-log FILE]
//
// Guest paths must lie below /run/kata-containers/shared/containers/ and
// are written below DIR (DIR + guest path). Regular files go to
// "<path>.tmp" at the given offset and are renamed into place once their
// size equals file_size; S_IFDIR makes a directory; S_IFLNK replaces a
// symlink whose target is the data. Every call is logged to stderr.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containerd/ttrpc"
	"github.com/gogo/protobuf/proto"
	"github.com/gogo/protobuf/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const containersBase = "/run/kata-containers/shared/containers"

// CopyFileRequest mirrors grpc.CopyFileRequest of Kata's agent.proto; gogo
// protobuf marshals it by reflection over these tags.
type CopyFileRequest struct {
	Path     string `protobuf:"bytes,1,opt,name=path,proto3"`
	FileSize int64  `protobuf:"varint,2,opt,name=file_size,json=fileSize,proto3"`
	FileMode uint32 `protobuf:"varint,3,opt,name=file_mode,json=fileMode,proto3"`
	DirMode  uint32 `protobuf:"varint,4,opt,name=dir_mode,json=dirMode,proto3"`
	Uid      int32  `protobuf:"varint,5,opt,name=uid,proto3"`
	Gid      int32  `protobuf:"varint,6,opt,name=gid,proto3"`
	Offset   int64  `protobuf:"varint,7,opt,name=offset,proto3"`
	Data     []byte `protobuf:"bytes,8,opt,name=data,proto3"`
}

func (m *CopyFileRequest) Reset()         { *m = CopyFileRequest{} }
func (m *CopyFileRequest) String() string { return proto.CompactTextString(m) }
func (*CopyFileRequest) ProtoMessage()    {}

var (
	socketPath = flag.String("socket", "", "unix socket to listen on")
	root       = flag.String("root", "", "directory standing for the guest's /")
	hvsock     = flag.Bool("hvsock", false, "require the hybrid vsock handshake (CONNECT <port>)")
	port       = flag.Uint("port", 1024, "port expected in CONNECT with -hvsock")
	delay      = flag.Duration("delay", 0, "sleep this long in every call")
	dropAfter  = flag.Int("drop-after", 0, "after N answered calls, close every connection once")
	errCode    = flag.Int("error-code", 0, "answer every call with this gRPC status code")
	errMsg     = flag.String("error-msg", "injected failure", "message for -error-code")
	junk       = flag.String("junk", "", "misbehave instead of serving: type|oversize|stream|garbage|text|truncated|silent")
	quiet      = flag.Bool("quiet", false, "do not log every call")
	ackLog     = flag.String("ack-log", "", "append one line per successful call: <unix ns> <path> <symlink target or ->")

	calls int64
	conns = struct {
		sync.Mutex
		m map[net.Conn]bool
	}{m: map[net.Conn]bool{}}
	dropped int32
)

func grpcErr(c codes.Code, format string, args ...interface{}) error {
	return status.Errorf(c, format, args...)
}

func hostPath(guest string) (string, error) {
	if !filepath.IsAbs(guest) || filepath.Clean(guest) != guest {
		return "", grpcErr(codes.InvalidArgument, "path %q is not absolute and canonical", guest)
	}
	if !strings.HasPrefix(guest, containersBase+"/") {
		return "", grpcErr(codes.PermissionDenied, "only files below %s/ may be copied, not %q", containersBase, guest)
	}
	return filepath.Join(*root, guest), nil
}

func chown(path string, uid, gid int32) error {
	if err := os.Lchown(path, int(uid), int(gid)); err != nil && os.Geteuid() == 0 {
		return err
	}
	return nil
}

func copyFile(req *CopyFileRequest) error {
	dst, err := hostPath(req.Path)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), os.FileMode(req.DirMode&0777)); err != nil {
		return grpcErr(codes.Internal, "mkdir parents of %s: %v", req.Path, err)
	}
	perm := req.FileMode & 07777
	switch req.FileMode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		if err := os.Mkdir(dst, 0700); err != nil && !os.IsExist(err) {
			return grpcErr(codes.Internal, "mkdir %s: %v", req.Path, err)
		}
		if err := syscall.Chmod(dst, perm); err != nil {
			return grpcErr(codes.Internal, "chmod %s: %v", req.Path, err)
		}
		return chown(dst, req.Uid, req.Gid)
	case syscall.S_IFLNK:
		tmp := dst + ".tmp-link"
		os.Remove(tmp)
		if err := os.Symlink(string(req.Data), tmp); err != nil {
			return grpcErr(codes.Internal, "symlink %s: %v", req.Path, err)
		}
		if err := chown(tmp, req.Uid, req.Gid); err != nil {
			return grpcErr(codes.Internal, "lchown %s: %v", req.Path, err)
		}
		if err := os.Rename(tmp, dst); err != nil {
			return grpcErr(codes.Internal, "replace symlink %s: %v", req.Path, err)
		}
		return nil
	case syscall.S_IFREG, 0:
	default:
		return grpcErr(codes.InvalidArgument, "unsupported file type %o for %s", req.FileMode&syscall.S_IFMT, req.Path)
	}
	tmp := dst + ".tmp"
	flags := os.O_WRONLY | os.O_CREATE
	if req.Offset == 0 {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(tmp, flags, 0600)
	if err != nil {
		return grpcErr(codes.Internal, "open %s: %v", tmp, err)
	}
	defer f.Close()
	if _, err := f.WriteAt(req.Data, req.Offset); err != nil {
		return grpcErr(codes.Internal, "write %s: %v", tmp, err)
	}
	st, err := f.Stat()
	if err != nil {
		return grpcErr(codes.Internal, "stat %s: %v", tmp, err)
	}
	if st.Size() != req.FileSize {
		return nil // more chunks to come
	}
	if err := f.Chmod(os.FileMode(perm & 0777)); err != nil {
		return grpcErr(codes.Internal, "chmod %s: %v", tmp, err)
	}
	if err := syscall.Chmod(tmp, perm); err != nil {
		return grpcErr(codes.Internal, "chmod %s: %v", tmp, err)
	}
	if err := chown(tmp, req.Uid, req.Gid); err != nil {
		return grpcErr(codes.Internal, "chown %s: %v", tmp, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return grpcErr(codes.Internal, "rename %s: %v", tmp, err)
	}
	return nil
}

func dropAll() {
	conns.Lock()
	var all []net.Conn
	for c := range conns.m {
		all = append(all, c)
	}
	conns.Unlock()
	for _, c := range all {
		c.Close()
	}
}

func handleCopyFile(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
	var req CopyFileRequest
	if err := unmarshal(&req); err != nil {
		return nil, grpcErr(codes.InvalidArgument, "decode CopyFileRequest: %v", err)
	}
	n := atomic.AddInt64(&calls, 1)
	if !*quiet {
		log.Printf("call %d CopyFile path=%s size=%d mode=%o dir_mode=%o uid=%d gid=%d offset=%d len=%d",
			n, req.Path, req.FileSize, req.FileMode, req.DirMode, req.Uid, req.Gid, req.Offset, len(req.Data))
	}
	if *delay > 0 {
		time.Sleep(*delay)
	}
	if *dropAfter > 0 && n > int64(*dropAfter) && atomic.CompareAndSwapInt32(&dropped, 0, 1) {
		log.Printf("call %d: dropping every connection (-drop-after %d)", n, *dropAfter)
		dropAll()
		return nil, grpcErr(codes.Unavailable, "dropped")
	}
	if *errCode != 0 {
		return nil, grpcErr(codes.Code(*errCode), "%s", *errMsg)
	}
	if err := copyFile(&req); err != nil {
		log.Printf("call %d: %v", n, err)
		return nil, err
	}
	logAck(&req)
	return &types.Empty{}, nil
}

// logAck records when a call was answered, for latency benchmarks
// (tests/bench): realtime clock, as the writers on the other side use.
var ackFile struct {
	sync.Mutex
	f *os.File
}

func logAck(req *CopyFileRequest) {
	if ackFile.f == nil {
		return
	}
	target := "-"
	if req.FileMode&syscall.S_IFMT == syscall.S_IFLNK {
		target = string(req.Data)
	}
	line := fmt.Sprintf("%d %s %s\n", time.Now().UnixNano(), req.Path, target)
	ackFile.Lock()
	ackFile.f.WriteString(line)
	ackFile.Unlock()
}

// hybridHandshake reads "CONNECT <port>\n" byte by byte and answers OK.
func hybridHandshake(c net.Conn) error {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	var line []byte
	b := make([]byte, 1)
	for {
		if _, err := c.Read(b); err != nil {
			return fmt.Errorf("handshake: %v", err)
		}
		if b[0] == '\n' {
			break
		}
		line = append(line, b[0])
		if len(line) > 64 {
			return fmt.Errorf("handshake line too long")
		}
	}
	var p uint
	if _, err := fmt.Sscanf(string(line), "CONNECT %d", &p); err != nil || p != *port {
		c.Write([]byte("ERR unknown port\n"))
		return fmt.Errorf("handshake: bad request %q (want CONNECT %d)", line, *port)
	}
	_, err := c.Write([]byte(fmt.Sprintf("OK %d\n", 1073741824+p)))
	return err
}

type trackingListener struct{ net.Listener }

type trackedConn struct {
	net.Conn
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		conns.Lock()
		delete(conns.m, c)
		conns.Unlock()
	})
	return c.Conn.Close()
}

func (l trackingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if *hvsock {
			if err := hybridHandshake(c); err != nil {
				log.Printf("%v", err)
				c.Close()
				continue
			}
		}
		tc := &trackedConn{Conn: c}
		conns.Lock()
		conns.m[tc] = true
		conns.Unlock()
		return tc, nil
	}
}

// serveJunk answers every request with something a client must reject.
func serveJunk(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	hdr := make([]byte, 10)
	for {
		if _, err := io.ReadFull(br, hdr); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[:4])
		id := binary.BigEndian.Uint32(hdr[4:8])
		if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
			return
		}
		log.Printf("junk %s for stream %d", *junk, id)
		out := make([]byte, 10)
		switch *junk {
		case "type":
			binary.BigEndian.PutUint32(out[4:], id)
			out[8] = 7
		case "oversize":
			binary.BigEndian.PutUint32(out[:4], 4<<20+1)
			binary.BigEndian.PutUint32(out[4:], id)
			out[8] = 2
		case "stream":
			binary.BigEndian.PutUint32(out[4:], id+1000)
			out[8] = 2
		case "garbage":
			binary.BigEndian.PutUint32(out[:4], 6)
			binary.BigEndian.PutUint32(out[4:], id)
			out[8] = 2
			out = append(out, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
		case "text":
			out = []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
		case "truncated":
			c.Write([]byte{0, 0, 0})
			return
		case "silent":
			continue
		}
		if _, err := c.Write(out); err != nil {
			return
		}
		// Keep the connection open: the client must give up on its own.
	}
}

func main() {
	flag.Parse()
	log.SetFlags(log.Lmicroseconds)
	log.SetPrefix("kata-peer: ")
	if *socketPath == "" || (*root == "" && *junk == "") {
		fmt.Fprintln(os.Stderr, "usage: kata-peer -socket PATH -root DIR [options]")
		flag.PrintDefaults()
		os.Exit(2)
	}
	syscall.Umask(0)
	if *ackLog != "" {
		f, err := os.OpenFile(*ackLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0644)
		if err != nil {
			log.Fatalf("-ack-log: %v", err)
		}
		ackFile.f = f
	}
	os.Remove(*socketPath)
	l, err := net.Listen("unix", *socketPath)
	if err != nil {
		log.Fatalf("listen %s: %v", *socketPath, err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		l.Close()
		os.Remove(*socketPath)
		os.Exit(0)
	}()
	log.Printf("listening on %s (hvsock=%v junk=%q)", *socketPath, *hvsock, *junk)
	if *junk != "" {
		for {
			c, err := l.Accept()
			if err != nil {
				log.Fatalf("accept: %v", err)
			}
			if *hvsock {
				if err := hybridHandshake(c); err != nil {
					c.Close()
					continue
				}
			}
			go serveJunk(c)
		}
	}
	s, err := ttrpc.NewServer()
	if err != nil {
		log.Fatalf("ttrpc: %v", err)
	}
	s.Register("grpc.AgentService", map[string]ttrpc.Method{
		"CopyFile": handleCopyFile,
	})
	if err := s.Serve(context.Background(), trackingListener{l}); err != nil {
		log.Fatalf("serve: %v", err)
	}
}
