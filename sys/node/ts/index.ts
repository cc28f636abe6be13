// SPDX-License-Identifier: BSD-2-Clause
//
// xseg for Node.js: shared-memory segments and lock-free queues linking C
// processes, Linux kernel modules and Node peers. See docs/node.md.
export { Segment } from './segment.js'
export type { SegmentConfig, SegmentInfo, SegmentPeek, RecoveryStats, GrowStatus, JoinOptions, CreateOptions, BindOptions } from './segment.js'
export { Port } from './port.js'
export { Batch } from './batch.js'
export type { Handler, ServeOptions, PortInfo, SpinOptions } from './port.js'
export { Request } from './request.js'
export type { RequestOptions, RequestState, WaitOptions } from './request.js'
export { OPS, Op, Flag, opName } from './constants.js'
export type { OpName, FlagName, PeerType } from './constants.js'
export { XsegError, errnoName, errnoNumber } from './errors.js'
export type { XsegErrorOptions } from './errors.js'
export * as pattern from './pattern.js'
export { servePool, _poolWorker } from './pool.js'
export type { Pool, PoolOptions, PoolStats } from './pool.js'
export { Volumes, VolumeError, validVolumeName, splitTarget } from './volumes.js'
export type { VolumeInfo, VolumeEntry, VolumeKind, FsckResult, VolumesOptions } from './volumes.js'
// The NBD gateway and client (docs/nbd.md) and the `xseg serve` pipeline
// (docs/serve.md), for embedding.
export { NbdGateway } from '../../../peers/node/nbd/server.js'
export type { NbdExport, NbdGatewayOptions, NbdListenOptions, NbdAddresses, NbdStats, NbdLogger, NbdLogLevel, NbdEngineStats } from '../../../peers/node/nbd/server.js'
export { NbdClient, NbdError } from '../../../peers/node/nbd/client.js'
export type { NbdAddress, NbdConnectOptions, NbdBlockSize } from '../../../peers/node/nbd/client.js'
export { Pipeline, ConfigError, parseServeConfig, loadServeConfig } from '../../../peers/node/cli/serve.js'
export type { ServeConfig, PeerConfig, ExportConfig, NbdConfig, VolumesConfig, PipelineEvents, Restart } from '../../../peers/node/cli/serve.js'
