"""Networking library of the bridge driver. Plain Python, no HTTP, no engine imports.

Modules (each documents its API for the engine in its docstring):

- ``ipam``       subnets per network (default pools, host routes avoided; an IPv6 pool too for
                 IPv6 networks), addresses per endpoint; pure, JSON-serialisable state.
- ``netns``      network namespaces bound at paths (``<exec-root>/netns/<id>``), code run inside.
- ``bridge``     Linux bridges, veth endpoints into a netns, MAC 02:42:<ip>, routes (pyroute2;
                 ``connect``, the per-start hot path, speaks raw rtnetlink through ``rtnl``).
- ``rtnl``       a minimal rtnetlink client (veth pair, address, link up, default route).
- ``firewall``   iptables chains: NAT, isolation, published ports incl. 127.0.0.1 (kernel only);
                 ``family=6``: the same on ip6tables.
- ``ports``      PortBindings / ``-p`` parsing, ephemeral ports, host-port allocation.
- ``proxy``      userland TCP/UDP port proxies (docker-proxy's job) for ``--iptables=false``
                 and for IPv6 ports on [::] and [::1].
- ``dns``        embedded resolver (asyncio UDP+TCP) for user networks (A, AAAA, PTR, a
                 container's own link aliases); ``dnswire`` its codec.
- ``resolvconf`` containers' resolv.conf and the resolver's upstreams.
- ``sysctl``     /proc/sys/net in the calling thread's netns (ip_forward, route_localnet).
- ``host``       ``HostNetwork``: one daemon's host side built from the above (its bridges,
                 rules, netns handles, port proxies; host object naming; dead daemons'
                 leftovers). The engine holds one and hands it plain data.

A container start on a bridge network, in order (IPAM and DNS are the engine's bookkeeping;
``host.HostNetwork`` does the rest)::

    path = netns.create(f"{exec_root}/netns/{cid}")               # before runc; in the OCI spec
    ip = ipam.allocate_address(net_id, preferred=None)
    ep = bridge.connect(br, path, address=pool.cidr(ip), gateway=str(pool.gateway))
    maps = [allocator.allocate(r, owner=cid) for r in ports.parse_port_bindings(pb)]
    firewall.add_ports(br, ep.ip, maps)
    dns.register(net_id, [name, *aliases, cid[:12]], ep.ip)
    ... and on stop: firewall.remove_ports, allocator.release_owner, dns.unregister,
    netns.delete (removes the veth too), ipam.release_address.

Blocking calls (netlink, iptables, netns) belong in worker threads (``asyncio.to_thread``);
``dns.DnsServer`` runs on the daemon's event loop.

Import this package cheaply: pyroute2 is imported lazily inside the functions that need it.
"""
