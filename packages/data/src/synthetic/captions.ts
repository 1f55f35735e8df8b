import type { SeededRng } from '@s2cpnet/core';
import type { SceneFacts } from './scenes';

/**
 * The caption grammar of the synthetic aerial set.
 *
 * Each scene type has one canonical sentence and six or more paraphrases; an image's five captions are the canonical
 * one plus four paraphrases drawn at random. Keeping the canonical sentence in every reference set is what makes the
 * set learnable to high BLEU/CIDEr: the sentence a captioner converges on is always among the references. Captions
 * mention only what is drawn: counts come from the finished object list (small counts spelt out, larger ones
 * "several" / "many"), colours from the class colours, relations ("on the left of", "crossed by", "surrounded by",
 * "next to") from the scene geometry.
 */

/** Caption words that refer to each object class (used by tests and by anyone checking captions against masks). */
export const SYNTHETIC_CLASS_WORDS: Readonly<Record<string, readonly string[]>> = {
  building: ['building', 'buildings', 'house', 'houses'],
  tree: ['tree', 'trees', 'forest'],
  road: ['road', 'roads', 'crossroads', 'intersection'],
  river: ['river'],
  lake: ['lake'],
  farmland: ['farmland'],
  playground: ['playground', 'track'],
  'football field': ['football'],
  'parking lot': ['parking'],
  car: ['car', 'cars'],
  bridge: ['bridge'],
};

/** Spelt-out count: exact up to three, then "several" (4-6) and "many" (7+). */
export function countWord(n: number): string {
  if (n <= 1) return 'one';
  if (n === 2) return 'two';
  if (n === 3) return 'three';
  return n <= 6 ? 'several' : 'many';
}

/** "a red building" / "three red buildings". */
function counted(n: number, adjective: string, singular: string, plural: string): string {
  const words = n === 1 ? ['a', adjective, singular] : [countWord(n), adjective, plural];
  return words.filter(Boolean).join(' ');
}

const isAre = (n: number): string => (n === 1 ? 'is' : 'are');

/** Sentences for one image: `[canonical, ...paraphrases]`. `count(className)` is the visible object count. */
function sentencesFor(facts: SceneFacts, count: (className: string) => number): string[] {
  switch (facts.scene) {
    case 'residential': {
      const n = count('building');
      const c = facts.buildingColor;
      const buildings = counted(n, c, 'building', 'buildings');
      const houses = counted(n, c, 'house', 'houses');
      const side =
        facts.side === 'both'
          ? 'on both sides of the road'
          : facts.orientation === 'vertical'
            ? `on the ${facts.side} of the road`
            : facts.side === 'left'
              ? 'above the road'
              : 'below the road';
      const direction = facts.orientation === 'vertical' ? 'from the top to the bottom' : 'from left to right';
      return [
        `there ${isAre(n)} ${buildings} ${side}`,
        `${houses} ${isAre(n)} located ${side}`,
        `this is a residential area with ${buildings} and a road`,
        `a straight road passes through a residential area with ${c} houses`,
        count('tree') > 0
          ? `some green trees are planted near the ${c} ${n === 1 ? 'house' : 'houses'}`
          : `the ${c} ${n === 1 ? 'house is' : 'houses are'} built on the green grass`,
        `the ${c} ${n === 1 ? 'building is' : 'buildings are'} arranged neatly ${side}`,
        `a road goes ${direction} next to ${buildings}`,
      ];
    }
    case 'farmland': {
      const n = countWord(count('farmland'));
      const colors = facts.colors.join(' and ');
      return [
        `there are ${n} pieces of ${colors} farmland`,
        `${n} pieces of farmland are arranged neatly`,
        `this is a farmland area with ${colors} crops`,
        `the farmland is divided into ${n} ${colors} pieces`,
        facts.hasRoad ? `a road passes through the ${colors} farmland` : `some ${colors} farmland is arranged in rows`,
        facts.hasRoad ? 'the pieces of farmland are separated by a road' : `the ${colors} farmland is neat and flat`,
        `crops are growing in the ${colors} farmland`,
      ];
    }
    case 'parking': {
      const cars = count('car');
      const carPhrase = cars === 1 ? 'a car' : `${countWord(cars)} cars`;
      const building = count('building') > 0 ? `a ${facts.buildingColor} building` : '';
      const part = facts.lotPosition === 'middle' ? 'middle' : `${facts.lotPosition} part`;
      return [
        `${carPhrase} ${isAre(cars)} parked in a parking lot`,
        `there is a grey parking lot with ${carPhrase}`,
        building ? `a parking lot is next to ${building}` : 'a parking lot is surrounded by green grass',
        cars > 1 ? 'some cars are parked neatly in the parking lot' : 'only one car is in the parking lot',
        `this is a parking lot with ${carPhrase}${building ? ` beside ${building}` : ''}`,
        `the parking lot is in the ${part} of the image`,
        building ? `${building} stands next to a grey parking lot` : `the grey parking lot is in the green grassland`,
      ];
    }
    case 'river': {
      const bridge = count('bridge') > 0;
      const trees = count('tree') > 0;
      const direction = facts.orientation === 'vertical' ? 'from the top to the bottom' : 'from left to right';
      return [
        bridge ? 'a blue river is crossed by a bridge' : 'a blue river passes through the green land',
        trees
          ? `there is a curved river with trees on ${facts.treeSides > 1 ? 'both sides' : 'one side'}`
          : 'there is a curved river with green grass on both sides',
        `the river flows ${direction} of the image`,
        bridge
          ? 'a road crosses the river over a bridge'
          : trees
            ? 'a winding river and some green trees'
            : 'a winding river in the green grassland',
        trees ? 'some green trees grow along the river' : 'the water of the river is blue and clear',
        bridge ? 'a bridge goes across the winding river' : 'a clear river runs through the area',
        'this is a river in the green grassland',
      ];
    }
    case 'lake': {
      const around = facts.surround === 'trees' ? 'green trees' : 'green grass';
      const part = facts.position === 'middle' ? 'middle' : `${facts.position} part`;
      return [
        `a ${facts.size} blue lake is surrounded by ${around}`,
        `there is a lake in the ${part} of the image`,
        `a ${facts.size} lake with ${facts.surround === 'trees' ? 'many trees' : 'green grass'} around it`,
        'the water of the lake is blue and calm',
        `this is a ${facts.size} blue lake in the grassland`,
        facts.surround === 'trees' ? 'many green trees are around the lake' : 'the lake is in the green grassland',
        `the ${facts.size} lake lies in the ${part} of the image`,
      ];
    }
    case 'playground': {
      const n = count('building');
      const c = facts.buildingColor;
      const trees = count('tree') > 0;
      return [
        'a red playground with a green football field in the middle',
        n > 0
          ? `there is a playground next to ${counted(n, c, 'building', 'buildings')}`
          : 'there is a playground surrounded by green grass',
        'a green football field is surrounded by a red running track',
        trees ? 'the playground is next to some green trees' : 'the playground is on the green grass',
        'this is a playground with a red running track',
        `a ${facts.orientation} red playground with a football field inside`,
        n > 0
          ? `${counted(n, c, 'building', 'buildings')} ${isAre(n)} near the red playground`
          : 'a red running track around a green football field',
      ];
    }
    case 'forest': {
      const road = facts.hasRoad;
      return [
        road ? 'a dense forest is crossed by a road' : 'a dense forest with many green trees',
        road
          ? 'many green trees are growing densely on both sides of the road'
          : 'many green trees are growing densely together',
        'this is a dense green forest area',
        road ? `a ${facts.roadOrientation} road passes through the dense forest` : 'the trees in the forest are dark green',
        'a lot of trees are planted closely together',
        'the forest is made up of many trees',
        road ? 'a straight road goes through the green trees' : 'the dense forest covers the whole image',
      ];
    }
    case 'intersection': {
      const n = count('building');
      const c = facts.buildingColor;
      const cars = count('car');
      const carPhrase = cars === 1 ? 'a car' : `${countWord(cars)} cars`;
      const ground = facts.ground === 'grass' ? 'green grassland' : 'bare land';
      return [
        cars > 0 ? `two roads cross each other with ${carPhrase}` : 'two grey roads cross each other',
        n > 0
          ? `this is a crossroads with ${counted(n, c, 'building', 'buildings')} at the corners`
          : `this is a crossroads on the ${ground}`,
        cars > 0 ? `${carPhrase} ${isAre(cars)} driving on the roads` : 'the two roads are empty and straight',
        'there is an intersection of two straight roads',
        n > 0
          ? `${counted(n, c, 'building', 'buildings')} ${isAre(n)} near the intersection`
          : `the intersection is surrounded by ${ground}`,
        'a vertical road and a horizontal road meet at the crossroads',
        `two grey roads cross on the ${ground}`,
      ];
    }
  }
}

/**
 * Five captions for one image: the canonical sentence plus four distinct paraphrases chosen by `rng`, in random
 * order. Lower-case words separated by single spaces, no punctuation.
 */
export function captionScene(facts: SceneFacts, classCounts: ReadonlyMap<string, number>, rng: SeededRng): string[] {
  const sentences = sentencesFor(facts, (className) => classCounts.get(className) ?? 0);
  const [canonical, ...paraphrases] = sentences;
  const chosen = [canonical!, ...rng.shuffle(paraphrases).slice(0, 4)];
  return rng.shuffle(chosen).map((sentence) => sentence.replace(/\s+/g, ' ').trim());
}
