"""The only `bpy` code outside operators/ and ui/: importer, runtime (the pump), and later finishing and export."""
