"""Image storage libraries (no HTTP, no engine database; containerd-style split).

* ``content``   -- blobs by digest, atomic streaming writes (``ContentStore``)
* ``layers``    -- image layers by chain ID, container read-write layers, refcounts
                   (``LayerStore``), built on a graph driver
* ``drivers``   -- ``overlay2`` and ``vfs`` graph drivers (``new_driver``)
* ``archive``   -- applying layer tars safely (``apply_layer``, ``untar``)
* ``tarwrite``  -- tars from directories (``tar_directory``)
* ``changes``   -- ``docker diff`` change lists and diff tars
* ``copypath``  -- ``docker cp`` stat/tar/untar of container paths
* ``tarsplit``  -- byte-exact reconstruction of layer tars for save/push
* ``fsroot``, ``tarformat``, ``compression``, ``fsutil`` -- building blocks

Nothing is imported here so that ``import berth.storage.content`` stays cheap.
"""
