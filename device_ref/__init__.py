"""Reference virtio devices, driver, ring core and vhost-user transport."""
