// Command floor is the size baseline of scripts/size.sh: it links only what
// any TSP client with gogoc's features must (the Go runtime, net with its
// resolver, fmt, flag, signals, and the crypto of DIGEST-MD5 and
// PASSDSS-3DES-1). Whatever gogoc's binary has beyond it is gogoc's own.
// It is built, never run.
package main

import (
	"crypto/cipher"
	"crypto/des"
	//lint:ignore SA1019 the floor links what PASSDSS-3DES-1 needs, DSA included (spec §3.5).
	"crypto/dsa"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	v := flag.Bool("v", false, "verbose")
	flag.Parse()
	c, err := net.Dial("udp", flag.Arg(0)+":3653")
	if err != nil {
		fmt.Fprintf(os.Stderr, "dial: %v\n", err)
		os.Exit(1)
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	blk, err := des.NewTripleDESCipher(b)
	if err != nil {
		os.Exit(1)
	}
	cipher.NewCBCEncrypter(blk, b[:8]).CryptBlocks(b, b)
	h := hmac.New(sha1.New, b)
	h.Write(b)
	s := md5.Sum(b)
	pk := dsa.PublicKey{Parameters: dsa.Parameters{P: big.NewInt(23), Q: big.NewInt(11), G: big.NewInt(4)}, Y: new(big.Int).Exp(big.NewInt(4), big.NewInt(3), big.NewInt(23))}
	fmt.Println(base64.StdEncoding.EncodeToString(h.Sum(nil)), dsa.Verify(&pk, s[:], big.NewInt(1), big.NewInt(2)), *v, c.LocalAddr())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	select {
	case <-ch:
	case <-time.After(time.Second):
	}
	fmt.Println(time.Now().Format(time.RFC3339))
}
