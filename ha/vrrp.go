package ha

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"
)

// Advert is one VRRP advertisement (RFC 3768 VRRPv2, RFC 5798 VRRPv3), the
// payload of an IP protocol 112 packet.
//
// Only the master sends adverts, so they tell who the master is (the IP
// source address, which the caller has) and with what priority; they cannot
// tell a BACKUP from a FAULT or a stopped keepalived. Priority 0 is a
// master resigning (graceful stop); a crashed master just falls silent.
// Two sources advertising the same VRID at once is a split brain.
type Advert struct {
	Version  uint8 // 2 or 3
	VRID     uint8 // 1..255
	Priority uint8 // 0 resigning, 255 address owner

	// Interval is the advert interval: whole seconds in v2, centiseconds
	// (up to 40.95 s) in v3.
	Interval time.Duration

	// Addrs are the virtual addresses: IPv4 in v2; in v3 the family of
	// the packet's IP header.
	Addrs []netip.Addr

	// AuthType and Auth are v2 only (zero in v3): 0 none, 1 simple text
	// password, 2 IP AH. With type 1 Auth is the password in clear text,
	// which is why Auth never prints.
	AuthType uint8
	Auth     AuthData
}

// AuthData is VRRPv2's 8-byte authentication data. It compares with == (to
// spot a peer with another password) but prints as "[redacted]" with every
// fmt verb, so an Advert can be logged.
type AuthData [8]byte

// Format implements fmt.Formatter.
func (AuthData) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[redacted]")) }

// String implements fmt.Stringer.
func (AuthData) String() string { return "[redacted]" }

// GoString implements fmt.GoStringer.
func (AuthData) GoString() string { return "[redacted]" }

const (
	vrrpProto     = 112
	vrrpAdvert    = 1 // the only VRRP message type
	vrrpHeaderLen = 8
	vrrpAuthLen   = 8
	sourceVRRP    = "vrrp"
)

// ParseVRRP reads a VRRP advert: pkt is the IP payload, from the VRRP
// version byte on. src and dst are the IP header's addresses; VRRPv3's
// checksum covers them (a pseudo-header, as in UDP), and their family says
// whether the v3 addresses are IPv4 or IPv6. VRRPv2 is IPv4 only and its
// checksum covers the message alone; src and dst must then be IPv4 or
// invalid (zero).
//
// Everything is checked: version 2 or 3, type advertisement, VRID 1..255,
// a non-zero interval, the length the address count implies (shorter is
// ErrTruncated, longer is ErrInvalid), v2 auth type 0..2, and the checksum
// (ErrChecksum). The reserved bits of v3 are ignored, as RFC 5798 says.
// Errors are *Error naming the byte offset, wrapping ErrInvalid.
//
// keepalived's old_unicast_checksum (and the OLD_CHKSUM_COMPAT build
// option) computes v3 unicast checksums with 224.0.0.18 as destination;
// such adverts fail here unless the caller passes that dst.
func ParseVRRP(pkt []byte, src, dst netip.Addr) (Advert, error) {
	if len(pkt) < vrrpHeaderLen {
		return Advert{}, truncated(len(pkt), vrrpHeaderLen, "the 8-byte VRRP header")
	}
	var a Advert
	a.Version = pkt[0] >> 4
	if t := pkt[0] & 0xf; a.Version != 2 && a.Version != 3 {
		return Advert{}, invalidf(sourceVRRP, "offset 0", "version %d, want 2 or 3", a.Version)
	} else if t != vrrpAdvert {
		return Advert{}, invalidf(sourceVRRP, "offset 0", "type %d, want 1 (advertisement)", t)
	}
	a.VRID = pkt[1]
	if a.VRID == 0 {
		return Advert{}, invalidf(sourceVRRP, "offset 1", "VRID 0")
	}
	a.Priority = pkt[2]
	count := int(pkt[3])

	src, dst = src.Unmap(), dst.Unmap()
	addrLen := 4
	var want int
	if a.Version == 2 {
		if (src.IsValid() && !src.Is4()) || (dst.IsValid() && !dst.Is4()) {
			return Advert{}, invalidf(sourceVRRP, "", "VRRPv2 over IPv6 (%v > %v)", src, dst)
		}
		a.AuthType = pkt[4]
		if a.AuthType > 2 {
			return Advert{}, invalidf(sourceVRRP, "offset 4", "auth type %d, want 0..2", a.AuthType)
		}
		if pkt[5] == 0 {
			return Advert{}, invalidf(sourceVRRP, "offset 5", "advert interval 0")
		}
		a.Interval = time.Duration(pkt[5]) * time.Second
		want = vrrpHeaderLen + count*addrLen + vrrpAuthLen
		if len(pkt) < want {
			return Advert{}, truncated(len(pkt), want, fmt.Sprintf("header, %d IPv4 addresses and 8 bytes of auth data", count))
		}
	} else {
		if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
			return Advert{}, invalidf(sourceVRRP, "", "VRRPv3 needs IP source and destination of one family for its checksum, have %v > %v", src, dst)
		}
		if src.Is6() {
			addrLen = 16
		}
		ivl := binary.BigEndian.Uint16(pkt[4:]) & 0x0fff
		if ivl == 0 {
			return Advert{}, invalidf(sourceVRRP, "offset 4", "max advert interval 0")
		}
		a.Interval = time.Duration(ivl) * 10 * time.Millisecond
		want = vrrpHeaderLen + count*addrLen
		if len(pkt) < want {
			fam := "IPv4"
			if addrLen == 16 {
				fam = "IPv6"
			}
			return Advert{}, truncated(len(pkt), want, fmt.Sprintf("header and %d %s addresses", count, fam))
		}
	}
	if len(pkt) > want {
		return Advert{}, invalidf(sourceVRRP, fmt.Sprintf("offset %d", want), "%d bytes after the advert (count says %d addresses)", len(pkt)-want, count)
	}
	if sum := vrrpChecksum(pkt, a.Version, src, dst); sum != 0 {
		return Advert{}, &Error{Source: sourceVRRP, Where: "offset 6", Err: fmt.Errorf("%w: %w: 0x%04x, want 0x%04x",
			ErrInvalid, ErrChecksum, binary.BigEndian.Uint16(pkt[6:]), expectedChecksum(pkt, a.Version, src, dst))}
	}
	if count > 0 {
		a.Addrs = make([]netip.Addr, count)
		for i := range a.Addrs {
			off := vrrpHeaderLen + i*addrLen
			if addrLen == 4 {
				a.Addrs[i] = netip.AddrFrom4([4]byte(pkt[off:]))
			} else {
				a.Addrs[i] = netip.AddrFrom16([16]byte(pkt[off:]))
			}
		}
	}
	if a.Version == 2 {
		a.Auth = AuthData(pkt[len(pkt)-vrrpAuthLen:])
	}
	return a, nil
}

func truncated(have, need int, what string) error {
	return &Error{Source: sourceVRRP, Where: fmt.Sprintf("offset %d", have), Err: fmt.Errorf("%w: %w: %d bytes, need %d for %s",
		ErrInvalid, ErrTruncated, have, need, what)}
}

// EncodeVRRP renders a as the VRRP message ParseVRRP reads, checksum
// included; src and dst as in ParseVRRP. It returns nil if a cannot be
// encoded: a version other than 2 or 3, VRID 0, more than 255 addresses, an
// interval that is not a positive whole number of seconds (v2, up to 255)
// or centiseconds (v3, up to 4095), or addresses of another family than the
// header's (v2: IPv4; v3: that of src and dst).
func EncodeVRRP(a Advert, src, dst netip.Addr) []byte {
	src, dst = src.Unmap(), dst.Unmap()
	if a.VRID == 0 || len(a.Addrs) > 255 {
		return nil
	}
	six := false
	var ivl time.Duration
	switch a.Version {
	case 2:
		if (src.IsValid() && !src.Is4()) || (dst.IsValid() && !dst.Is4()) || a.AuthType > 2 ||
			a.Interval%time.Second != 0 {
			return nil
		}
		ivl = a.Interval / time.Second
		if ivl < 1 || ivl > 255 {
			return nil
		}
	case 3:
		if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() || a.AuthType != 0 || a.Auth != (AuthData{}) ||
			a.Interval%(10*time.Millisecond) != 0 {
			return nil
		}
		six = src.Is6()
		ivl = a.Interval / (10 * time.Millisecond)
		if ivl < 1 || ivl > 0xfff {
			return nil
		}
	default:
		return nil
	}
	b := make([]byte, vrrpHeaderLen, vrrpHeaderLen+len(a.Addrs)*16+vrrpAuthLen)
	b[0] = a.Version<<4 | vrrpAdvert
	b[1] = a.VRID
	b[2] = a.Priority
	b[3] = uint8(len(a.Addrs))
	if a.Version == 2 {
		b[4] = a.AuthType
		b[5] = uint8(ivl)
	} else {
		binary.BigEndian.PutUint16(b[4:], uint16(ivl))
	}
	for _, ad := range a.Addrs {
		if ad.Is6() != six || ad.Zone() != "" {
			return nil
		}
		b = append(b, ad.AsSlice()...)
	}
	if a.Version == 2 {
		b = append(b, a.Auth[:]...)
	}
	binary.BigEndian.PutUint16(b[6:], expectedChecksum(b, a.Version, src, dst))
	return b
}

// expectedChecksum is the checksum field pkt should carry.
func expectedChecksum(pkt []byte, version uint8, src, dst netip.Addr) uint16 {
	c := make([]byte, len(pkt))
	copy(c, pkt)
	c[6], c[7] = 0, 0
	return vrrpChecksum(c, version, src, dst)
}

// vrrpChecksum is the Internet checksum (RFC 1071) of pkt, preceded in v3
// by the IPv4 (RFC 768 style) or IPv6 (RFC 8200 section 8.1) pseudo-header.
// Over a packet with a correct checksum field it is 0.
func vrrpChecksum(pkt []byte, version uint8, src, dst netip.Addr) uint16 {
	var sum uint32
	add := func(b []byte) {
		for len(b) >= 2 {
			sum += uint32(b[0])<<8 | uint32(b[1])
			b = b[2:]
		}
		if len(b) == 1 {
			sum += uint32(b[0]) << 8
		}
	}
	if version == 3 {
		add(src.AsSlice())
		add(dst.AsSlice())
		n := uint32(len(pkt))
		sum += n>>16 + n&0xffff + vrrpProto
	}
	add(pkt)
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
