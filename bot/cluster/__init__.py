"""The distributed queue: front ends and worker hosts sharing jobs through Redis Streams (``ANIMEBOT_REDIS_URL``).

``RedisQueue`` (``frontend``) is the ``JobQueue`` the front ends submit to; ``WorkerHost`` (``host``) feeds the
in-process pool from Redis on each worker machine. The Lua scripts in ``lua/`` make every step atomic.
"""
