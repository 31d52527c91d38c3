// The heap: a boundary-tag allocator with segregated free lists over the linear memory above
// __heap_base. Tensors (and the GEMM packing scratch) live here; freed blocks are coalesced with
// free neighbours and reused, and a free block that reaches the top of the heap gives its space
// back to the top, so alloc/free cycles of the same sizes do not grow the memory.
//
// Block layout (every block starts at an address = 48 mod 64, so payloads are 64-byte aligned):
//   +0  u32 size of the whole block in bytes (header included, a multiple of 64) | USED bit
//   +4  u32 size of the previous block (0 for the first block)
//   +8  u32 next free block in this size class (free blocks only)
//   +12 u32 previous free block in this size class (free blocks only)
//   +16 payload
// Invariants: no two free blocks are adjacent, and no free block ends at `top`.
//
// The raw exports take byte offsets, and a kernel given a wrong offset can overwrite a header:
// the JS side never does that, but a raw caller can. So every pointer the heap follows (a free
// list link, a boundary tag, a pointer given to free) is checked to be a block of this heap
// before it is used, and every list walk is bounded by the number of blocks the heap can hold.
// A corrupted heap therefore traps (WebAssembly.RuntimeError in JS) instead of looping forever
// or scribbling further; a double free traps too.

// @ts-ignore: decorator
@inline const HEADER: usize = 16;
// @ts-ignore: decorator
@inline const ALIGN: usize = 64;
// @ts-ignore: decorator
@inline const USED: u32 = 1;
// @ts-ignore: decorator
@inline const CLASSES: i32 = 32;
// @ts-ignore: decorator
@inline const PAGE: u64 = 65536;
// @ts-ignore: decorator
@inline const MAX_MEMORY: u64 = 4294967296;

const heads: usize = memory.data(CLASSES * 4, 16);
const heapStart: usize = ((__heap_base + ALIGN - 1) & ~(ALIGN - 1)) + ALIGN - HEADER;
let top: usize = heapStart;
let lastBlock: usize = 0; // the block that ends at `top` (0 when the heap is empty)
let usedBytes: usize = 0;
let liveBlocks: i32 = 0;

// @ts-ignore: decorator
@inline function blockSize(block: usize): usize {
  return <usize>(load<u32>(block) & ~USED);
}

// @ts-ignore: decorator
@inline function isUsed(block: usize): bool {
  return (load<u32>(block) & USED) != 0;
}

/** True when `block` can be the start of a block of this heap (in range, on the 48 mod 64 grid). */
// @ts-ignore: decorator
@inline function isBlockAddress(block: usize): bool {
  return block >= heapStart && block < top && ((block - heapStart) & (ALIGN - 1)) == 0;
}

/** Traps unless `block` is a block address whose size field is sane (a multiple of 64, within the heap). */
function checkBlock(block: usize): void {
  if (!isBlockAddress(block)) unreachable();
  const size = blockSize(block);
  if (size < ALIGN || (size & (ALIGN - 1)) != 0 || size > top - block) unreachable();
}

/** Traps unless `link` is 0 (end of list) or a free block of this heap. */
function checkLink(link: usize): void {
  if (link == 0) return;
  checkBlock(link);
  if (isUsed(link)) unreachable();
}

/** An upper bound on the number of blocks, hence on the length of any walk over them. */
// @ts-ignore: decorator
@inline function maxBlocks(): usize {
  return (top - heapStart) / ALIGN + 1;
}

function sizeClass(size: usize): i32 {
  return 31 - <i32>clz<u32>(<u32>size);
}

function insertFree(block: usize, size: usize): void {
  store<u32>(block, <u32>size);
  const c = sizeClass(size);
  const slot = heads + (<usize>c << 2);
  const head = <usize>load<u32>(slot);
  store<u32>(block, <u32>head, 8);
  store<u32>(block, 0, 12);
  if (head != 0) store<u32>(head, <u32>block, 12);
  store<u32>(slot, <u32>block);
}

function removeFree(block: usize): void {
  const next = <usize>load<u32>(block, 8);
  const prev = <usize>load<u32>(block, 12);
  checkLink(next);
  checkLink(prev);
  if (next == block || prev == block) unreachable(); // a block linked to itself
  if (prev != 0) {
    store<u32>(prev, <u32>next, 8);
  } else {
    const slot = heads + (<usize>sizeClass(blockSize(block)) << 2);
    store<u32>(slot, <u32>next);
  }
  if (next != 0) store<u32>(next, <u32>prev, 12);
}

/** A free block of at least `size` bytes, removed from its list, or 0. */
function takeFit(size: usize): usize {
  const c = sizeClass(size);
  // Best fit within the block's own class (sizes in [2^c, 2^(c+1)) ).
  let best: usize = 0;
  let bestSize: usize = <usize>-1;
  let block = <usize>load<u32>(heads + (<usize>c << 2));
  let steps = maxBlocks();
  while (block != 0) {
    if (steps-- == 0) unreachable(); // a cycle: the list was overwritten
    checkLink(block);
    const s = blockSize(block);
    if (s >= size && s < bestSize) {
      best = block;
      bestSize = s;
      if (s == size) break;
    }
    block = <usize>load<u32>(block, 8);
  }
  if (best == 0) {
    // Any block of a larger class fits; take the smallest class that has one.
    for (let d = c + 1; d < CLASSES; d++) {
      const head = <usize>load<u32>(heads + (<usize>d << 2));
      if (head != 0) {
        checkLink(head);
        best = head;
        break;
      }
    }
  }
  if (best != 0) removeFree(best);
  return best;
}

/** Makes sure [0, end) is inside the memory, growing it if needed. */
function ensureMemory(end: u64): bool {
  const have = <u64>memory.size() * PAGE;
  if (end <= have) return true;
  if (end > MAX_MEMORY) return false;
  const pages = <i32>((end - have + PAGE - 1) / PAGE);
  return memory.grow(pages) >= 0;
}

/**
 * A zero-filled, 64-byte aligned block of at least `bytes` bytes; 0 when the memory cannot
 * grow that far.
 */
export function alloc(bytes: usize): usize {
  const want = <u64>bytes + <u64>HEADER + <u64>(ALIGN - 1);
  if (want > MAX_MEMORY) return 0;
  const size = <usize>(want & ~(<u64>(ALIGN - 1)));
  let block = takeFit(size);
  if (block != 0) {
    const have = blockSize(block);
    if (have - size >= ALIGN) {
      // Split: the tail becomes a free block. Its successor is a used block (free blocks never
      // touch each other or the top), so no coalescing is needed.
      const rest = block + size;
      const restSize = have - size;
      store<u32>(rest, <u32>size, 4);
      insertFree(rest, restSize);
      store<u32>(rest + restSize, <u32>restSize, 4);
      store<u32>(block, <u32>size | USED);
    } else {
      store<u32>(block, <u32>have | USED);
    }
  } else {
    if (!ensureMemory(<u64>top + <u64>size)) return 0;
    block = top;
    store<u32>(block, <u32>size | USED);
    store<u32>(block, lastBlock == 0 ? 0 : <u32>blockSize(lastBlock), 4);
    lastBlock = block;
    top = block + size;
  }
  const payload = block + HEADER;
  const total = blockSize(block);
  memory.fill(payload, 0, total - HEADER);
  usedBytes += total;
  liveBlocks++;
  return payload;
}

/**
 * Gives a block from alloc() back. The JS side only passes live blocks; anything else (a pointer
 * that is not a block of this heap, a block already free) traps rather than corrupting the heap.
 */
export function free(payload: usize): void {
  if (payload < HEADER) unreachable();
  let block = payload - HEADER;
  checkBlock(block);
  if (!isUsed(block)) unreachable(); // double free
  let size = blockSize(block);
  usedBytes -= size;
  liveBlocks--;
  const next = block + size;
  if (next < top) checkBlock(next);
  if (next < top && !isUsed(next)) {
    removeFree(next);
    size += blockSize(next);
  }
  if (block != heapStart) {
    const prevSize = <usize>load<u32>(block, 4);
    if (prevSize > block - heapStart) unreachable();
    const prev = block - prevSize;
    checkBlock(prev);
    if (!isUsed(prev)) {
      removeFree(prev);
      size += blockSize(prev);
      block = prev;
    }
  }
  if (block + size == top) {
    // Give the space back to the top of the heap.
    top = block;
    lastBlock = block == heapStart ? 0 : block - <usize>load<u32>(block, 4);
    return;
  }
  insertFree(block, size);
  store<u32>(block + size, <u32>size, 4);
}

/** Bytes held by live blocks (headers and alignment included). */
export function heapUsed(): usize {
  return usedBytes;
}

/** Live blocks. */
export function heapBlocks(): i32 {
  return liveBlocks;
}

/** Bytes between the start of the heap and its top (live + free blocks). */
export function heapExtent(): usize {
  return top - heapStart;
}

/** Walks the heap and checks its invariants; returns 0 when consistent, else an error code. */
export function heapCheck(): i32 {
  let block = heapStart;
  let prevSize: usize = 0;
  let prevFree = false;
  let used: usize = 0;
  let freeCount = 0;
  while (block < top) {
    const size = blockSize(block);
    if (size < ALIGN || (size & (ALIGN - 1)) != 0 || size > top - block) return 1;
    if (<usize>load<u32>(block, 4) != prevSize) return 2;
    const free = !isUsed(block);
    if (free && prevFree) return 3;
    if (free) freeCount++;
    else used += size;
    prevFree = free;
    prevSize = size;
    block += size;
  }
  if (block != top) return 4;
  if (prevFree) return 5;
  if (used != usedBytes) return 6;
  if (top != heapStart && blockSize(lastBlock) != prevSize) return 7;
  let listed = 0;
  for (let c = 0; c < CLASSES; c++) {
    let b = <usize>load<u32>(heads + (<usize>c << 2));
    while (b != 0) {
      if (!isBlockAddress(b) || isUsed(b) || sizeClass(blockSize(b)) != c) return 8;
      if (<usize>++listed > <usize>freeCount) return 9; // more listed than exist: a cycle or a stray link
      b = <usize>load<u32>(b, 8);
    }
  }
  if (listed != freeCount) return 9;
  return 0;
}
