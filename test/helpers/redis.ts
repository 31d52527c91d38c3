/** The queue tests' Redis server: the same one the queue benchmark starts (bench/redis-server.ts). */
export { freePort, redisAvailable, requireRedis, startRedis, type RedisServer } from '../../bench/redis-server.js';
