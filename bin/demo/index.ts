export { runFlatNetworkStory, type Outcome } from './story.js';
export { guardProcess } from './topology.js';
