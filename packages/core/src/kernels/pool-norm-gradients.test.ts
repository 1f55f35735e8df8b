import { describeGradientCases, gradientCaseGroups } from './gradient-cases.test-util';

describeGradientCases('normalizationAndPooling gradients', gradientCaseGroups.normalizationAndPooling);
