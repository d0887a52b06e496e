export { runFlatNetworkStory, type Outcome } from './story.js';
export { coverageGaps } from './story-phases.js';
export { guardProcess } from './topology.js';
