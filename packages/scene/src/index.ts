/**
 * @s2cpnet/scene: caption GeoTIFF / Cloud-Optimized GeoTIFF scenes tile by tile with S²CPNet. Scenes are read window
 * by window with `geotiff` (never whole), optionally resampled to the training ground sample distance, and each
 * tile's outline is reprojected to WGS84 with `proj4` for GeoJSON (RFC 7946), CSV and an HTML report.
 *
 * @example
 * ```ts
 * import { loadCaptioner } from '@s2cpnet/model';
 * import { captionScene, sceneToGeoJSON } from '@s2cpnet/scene';
 * const captioner = await loadCaptioner('@s2cpnet/weights-ucm-mobilenet');
 * const result = await captionScene(captioner, 'scene.tif', { tile: 256, gsd: 0.3 });
 * console.log(JSON.stringify(sceneToGeoJSON(result)));
 * ```
 * @packageDocumentation
 */
export { openScene, type Scene, type OpenSceneOptions, type SceneWindow, type GeoTransform, type PixelWindow, type BandStretch } from './scene';
export { crsFromDefinition, crsFromEpsg, epsgDefinition, toWgs84, KNOWN_EPSG_CODES, type SceneCrs } from './crs';
export { planTiles, type TilePlan, type TilePlanOptions, type PlannedTile } from './tiles';
export {
  captionScene,
  isSkippedTile,
  summarizeScene,
  tilePolygon,
  type CaptionSceneOptions,
  type Ring,
  type SceneCaptioner,
  type SceneCaptionResult,
  type SceneSummary,
  type SceneTileCaption,
  type SkippedSceneTile,
} from './caption-scene';
export { sceneToGeoJSON, sceneToCsv, csvField, tilesInOrder, type SceneFeatureCollection } from './writers';
export { renderSceneReport, writeSceneReport, type SceneReportOptions } from './report';
