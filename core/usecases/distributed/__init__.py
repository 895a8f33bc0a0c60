"""Heavy, embarrassingly parallel work on a Ray cluster (`--engine ray`): CLIP embedding and SAM
pre-encoding of a project's images with a pool of model actors (Ray Data `map_batches`, one model per
actor, one GPU per actor where the cluster has GPUs). The driver reads what is still to do from the
store, streams the results back and writes them in batches, so a stopped job resumes by skipping
what is stored. `ray` is an optional dependency (`pip install 'clipmark[ray]'`), imported lazily.
"""
