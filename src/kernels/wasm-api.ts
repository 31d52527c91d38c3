/**
 * The WebAssembly global, typed locally: the project's libs (ES2023 + @types/node 20) do not
 * declare it, and adding the DOM lib for it would be wrong for a Node library.
 */
export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  grow(pages: number): number;
}
export type WasmModule = object;
export interface WasmApi {
  Module: (new (bytes: Uint8Array) => WasmModule) & {
    exports(module: WasmModule): { name: string; kind: string }[];
    imports(module: WasmModule): { module: string; name: string; kind: string }[];
  };
  Instance: new (module: WasmModule, imports: object) => { readonly exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
  validate(bytes: Uint8Array): boolean;
}

/** The runtime's WebAssembly API. */
export const WA: WasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
