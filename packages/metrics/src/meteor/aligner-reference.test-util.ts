/**
 * Tests only: Meteor 1.5's beam search transcribed directly (`Aligner.resolve`): every extension of the 40 best
 * paths is built as a full path, the whole list is sorted, the next step takes the first 40. The aligner's own
 * search builds only the paths it keeps; `aligner-beam.test.ts` checks that both choose the same alignment.
 */
import type { Match, PartialAlignment, SearchStage } from './aligner.js';
import { addMatchWeight, BEAM_SIZE, comparePaths, extendPath, isUsed, MeteorAligner } from './aligner.js';

function resolveLikeMeteor(stage: SearchStage, start: PartialAlignment): PartialAlignment {
  const { proposals, fixed, fixedLine2Used } = stage;
  let nextPaths: PartialAlignment[] = [start];
  for (let current = 0; current <= proposals.length; current++) {
    const paths = nextPaths;
    nextPaths = [];
    paths.sort(comparePaths);
    for (let rank = 0; rank < BEAM_SIZE && rank < paths.length; rank++) {
      const path = paths[rank]!;
      if (current === proposals.length) {
        if (path.lastMatchEnd !== -1) path.chunks++;
        nextPaths.push(path);
        continue;
      }
      if (current < path.idx) {
        nextPaths.push(path);
        continue;
      }
      if (fixedLine2Used[current]) {
        const match: Match | null | undefined = fixed[path.idx];
        if (match !== null && match !== undefined) {
          addMatchWeight(path, match);
          if (path.lastMatchEnd !== -1 && match.matchStart !== path.lastMatchEnd) path.chunks++;
          path.idx = match.start + match.length;
          path.lastMatchEnd = match.matchStart + match.matchLength;
          path.distance += Math.abs(match.start - match.matchStart);
          nextPaths.push(path);
        }
        continue;
      }
      for (const match of proposals[current]!) {
        if (isUsed(stage, path, match)) continue;
        const extended = extendPath(path, match);
        addMatchWeight(extended, match);
        if (extended.lastMatchEnd !== -1 && match.matchStart !== extended.lastMatchEnd) extended.chunks++;
        extended.idx = match.start + match.length;
        extended.lastMatchEnd = match.matchStart + match.matchLength;
        path.distance += Math.abs(match.start - match.matchStart);
        nextPaths.push(extended);
      }
      if (path.lastMatchEnd !== -1) {
        path.chunks++;
        path.lastMatchEnd = -1;
      }
      path.idx++;
      nextPaths.push(path);
    }
    if (nextPaths.length === 0) nextPaths.push(paths[0]!);
  }
  nextPaths.sort(comparePaths);
  return nextPaths[0]!;
}

/** An aligner whose search is the direct transcription of Meteor's. */
export class MeteorTranscriptionAligner extends MeteorAligner {
  protected override search(stage: SearchStage, start: PartialAlignment): PartialAlignment {
    return resolveLikeMeteor(stage, start);
  }
}
